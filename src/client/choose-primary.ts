import type { Probe } from './probe-node.js';

/**
 * Which node the pool sends writes to, from one refresh: a pure function of what each node (and
 * the agents) said, returning the reason too.
 *
 * Only a node that answers as a primary. Two of them (an old primary not stopped yet): the later
 * timeline is the cluster's, and neither gets writes when they are on the same one. With agents
 * that answered (`agentLeader` not undefined), only the node holding their leader key: one they do
 * not name leaves the routing even while it still answers as a primary. A primary that refuses
 * writes by default (an upgrade's fence) is none: while `pgrepl upgrade` cuts over, writes wait, and
 * then go to the new cluster's primary when the pool knows its hosts too.
 */
export function choosePrimary(
  answers: readonly { readonly name: string; readonly probe: Probe | null | undefined }[],
  agentLeader: string | null | undefined,
): { readonly primary: string | null; readonly reason: string } {
  const fenced = answers.filter((a) => a.probe && !a.probe.recovery && a.probe.readOnly);
  const primaries = answers.filter((a) => a.probe && !a.probe.recovery && !a.probe.readOnly);
  if (agentLeader !== undefined) {
    const named = primaries.find((a) => a.name === agentLeader);
    if (named)
      return { primary: named.name, reason: `the agents' leader ${named.name} answers as a primary` };
    return {
      primary: null,
      reason:
        agentLeader === null
          ? 'the agents name no leader (a failover under way)'
          : `the agents' leader ${agentLeader} does not answer as a primary yet`,
    };
  }
  if (primaries.length === 0)
    return {
      primary: null,
      reason:
        fenced.length > 0
          ? `no node takes writes: ${fenced.map((a) => a.name).join(', ')} answer${fenced.length === 1 ? 's' : ''} as a primary refusing writes (default_transaction_read_only: an upgrade's cutover)`
          : 'no node answers as a primary',
    };
  const top = Math.max(...primaries.map((a) => a.probe?.timeline ?? 0));
  const latest = primaries.filter((a) => (a.probe?.timeline ?? 0) === top);
  if (latest.length > 1)
    return {
      primary: null,
      reason: `${latest.map((a) => a.name).join(' and ')} answer as primaries on timeline ${top}: writes to neither`,
    };
  const [only] = latest;
  return {
    primary: only?.name ?? null,
    reason:
      primaries.length > 1
        ? `${only?.name} is the primary on the latest timeline ${top}`
        : `${only?.name} answers as the primary`,
  };
}
