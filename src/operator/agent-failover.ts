import { PgreplError } from '../errors.js';
import { monotonicNow } from '../monotonic-now.js';
import type { ClusterSpec, HaSpec } from '../cluster-spec/cluster-spec.js';
import { compareCandidates } from '../cluster/decide/rank-candidates.js';
import { failoverCandidate } from '../cluster/decide/rank-candidates.js';
import type { HaState } from '../dcs/ha-values.js';
import { waitFor } from './ha-target.js';
import type { HaTarget } from './ha-target.js';

export interface AgentSwitchover {
  readonly oldPrimary: string;
  readonly newPrimary: string;
  /** From the request to the new leader's announcement: writes were impossible for at most this long. */
  readonly ms: number;
  readonly oldPrimaryRejoined: boolean;
}

/**
 * `switchover` through the agents: records the request in etcd; the leader's agent stops its server
 * cleanly and gives up the key; the target's agent promotes once it holds the shutdown checkpoint;
 * the old leader's agent rejoins it. Waits for each step, and says why when the leader refused.
 */
export async function switchoverThroughAgents(
  spec: ClusterSpec,
  t: HaTarget,
  to: string | undefined,
): Promise<AgentSwitchover> {
  const s = await t.store.read();
  if (s.view.paused)
    throw new PgreplError(
      'E_PAUSED',
      'the agents are paused and would not act: `pgrepl unpause` first (or, paused, switch over by hand with the agents out of the way)',
    );
  const leader = s.view.leader;
  if (!leader?.ready)
    throw new PgreplError(
      'E_NO_PRIMARY',
      'no agent holds the leader key now; a switchover needs a primary to hand over from',
    );
  const target = to ?? bestReplica(spec, s, t.ha, leader.node);
  if (!target) throw new PgreplError('E_NO_CANDIDATE', 'no replica with a live agent can take over');
  if (target === leader.node) throw new PgreplError('E_IS_PRIMARY', `${target} is the primary already`);
  const m = s.members.get(target);
  if (!m || m.role !== 'replica')
    throw new PgreplError(
      'E_NOT_A_REPLICA',
      `${target} is not a running replica with a live agent (${m?.role ?? 'no agent'})`,
    );
  // The rule the agents go by in a failover: never-promote marks, its own problem, the lag cap.
  const why = candidatesIn(spec, s, t.ha, leader.node).find((c) => c.name === target)?.problem ?? null;
  if (why !== null) {
    const node = spec.nodes.find((n) => n.name === target);
    const code = m.problem
      ? 'E_UNHEALTHY'
      : node?.noFailover || node?.failoverPriority === 0
        ? 'E_NO_CANDIDATE'
        : 'E_BEHIND';
    throw new PgreplError(code, `${target} cannot take over: ${why}; nothing was changed`);
  }
  const began = monotonicNow();
  // `at` identifies the request (the target's member record names it once its slots are made).
  await t.store.requestSwitchover({ from: leader.node, to: target, at: Date.now() });
  try {
    await waitFor(
      t,
      spec,
      (x) => {
        const refused = x.switchoverRefused;
        if (refused)
          throw new PgreplError(
            'E_SWITCHOVER_ABANDONED',
            `${leader.node}'s agent refused: ${refused}; nothing was changed`,
          );
        return x.view.leader?.node === target && x.view.leader.ready;
      },
      30_000,
      `${target} to take over`,
    );
    const ms = monotonicNow() - began;
    let oldPrimaryRejoined = true;
    try {
      await waitFor(
        t,
        spec,
        (x) =>
          x.members.get(leader.node)?.role === 'replica' && x.members.get(leader.node)?.decision === 'wait',
        20_000,
        `${leader.node} to stream from ${target}`,
      );
    } catch {
      oldPrimaryRejoined = false;
    }
    return { oldPrimary: leader.node, newPrimary: target, ms, oldPrimaryRejoined };
  } finally {
    await t.store.clearSwitchover().catch(() => undefined);
  }
}

export interface AgentFailover {
  readonly newPrimary: string;
  /** The node the last leader position was recorded by; null when none was. */
  readonly oldPrimary: string | null;
  /** From the request to the new leader's announcement. */
  readonly ms: number;
  readonly forced: boolean;
  /** The other replicas with a live agent that stream from it now, and those that do not yet. */
  readonly followers: string[];
  readonly notFollowing: string[];
}

/**
 * `promote` through the agents (a manual failover): only while no one holds the leader key, which
 * means no agent can still run a writable primary (a live leader renews it; a dead one's lease ran
 * out and its watchdog fenced it). The request names the target; its agent races alone, and with
 * `force` also past maximumLagOnFailover, the sync rule and its own problem. Works while paused.
 */
export async function failoverThroughAgents(
  spec: ClusterSpec,
  t: HaTarget,
  to: string | undefined,
  force: boolean,
): Promise<AgentFailover> {
  const s = await t.store.read();
  const leader = s.view.leader;
  if (leader) {
    const m = s.members.get(leader.node);
    throw new PgreplError(
      'E_PRIMARY_RUNNING',
      `${leader.node} holds the leader key (its agent reports its server ${m?.role ?? 'unknown'}); a promotion now ` +
        'would make a second primary. `pgrepl switchover --to NODE` hands over cleanly; if its host is gone, the ' +
        `key expires within ${t.ha.ttlSeconds} s and the agents fail over; nothing was changed`,
    );
  }
  const target = to ?? bestReplica(spec, s, t.ha, '');
  if (!target) throw new PgreplError('E_NO_CANDIDATE', 'no replica with a live agent can be promoted');
  const node = spec.nodes.find((n) => n.name === target);
  const m = s.members.get(target);
  if (!m || m.role !== 'replica')
    throw new PgreplError(
      'E_NOT_A_REPLICA',
      `${target} is not a running replica with a live agent (${m?.role ?? 'no agent'}); nothing was changed`,
    );
  if (node?.noFailover || node?.failoverPriority === 0)
    throw new PgreplError(
      'E_NO_CANDIDATE',
      `${target} is marked never to be promoted (noFailover or failoverPriority 0) in ${spec.source}`,
    );
  if (m.problem && !force)
    throw new PgreplError(
      'E_UNHEALTHY',
      `${target} cannot take over: ${m.problem}; \`--force\` promotes it anyway (commits only others hold are lost)`,
    );
  const began = monotonicNow();
  await t.store.requestFailover({ to: target, force, at: Date.now() });
  try {
    await waitFor(
      t,
      spec,
      (x) => {
        const l = x.view.leader;
        if (l?.ready && l.node !== target)
          throw new PgreplError(
            'E_PRIMARY_RUNNING',
            `${l.node} took the leader key first (an automatic failover); nothing else was changed`,
          );
        return l?.node === target && l.ready;
      },
      30_000,
      `${target} to take the leader key and promote (its agent: ${m.reason})`,
    );
    const ms = monotonicNow() - began;
    const others = [...s.members.values()]
      .filter((r) => r.node !== target && r.role === 'replica')
      .map((r) => r.node);
    let last = s;
    try {
      last = await waitFor(
        t,
        spec,
        (x) =>
          others.every((n) => {
            const r = x.members.get(n);
            return !r || (r.role === 'replica' && r.decision === 'wait' && r.upstream === target);
          }),
        20_000,
        `${others.join(', ')} to follow ${target}`,
      );
    } catch {
      last = await t.store.read();
    }
    const following = (n: string) =>
      last.members.get(n)?.role === 'replica' && last.members.get(n)?.decision === 'wait';
    return {
      newPrimary: target,
      oldPrimary: s.view.lastLeaderLsn?.node ?? null,
      ms,
      forced: force,
      followers: others.filter(following),
      notFollowing: others.filter((n) => !following(n)),
    };
  } finally {
    await t.store.clearFailover().catch(() => undefined);
  }
}

/**
 * The replicas with a live agent as failover candidates, by the one rule the agents also go by
 * (failoverCandidate): never-promote marks, each agent's own problem, and the lag cap.
 */
export function candidatesIn(spec: ClusterSpec, s: HaState, ha: HaSpec, leader: string) {
  return spec.nodes.flatMap((n, specIndex) => {
    const m = s.members.get(n.name);
    if (n.name === leader || m?.role !== 'replica') return [];
    return [
      failoverCandidate({
        name: n.name,
        rules: { failoverPriority: n.failoverPriority, noFailover: n.noFailover, specIndex },
        problem: m.problem,
        positionLsn: m.lsn,
        replayLsn: m.replayLsn,
        lag: { bytes: m.lagBytes, cap: ha.maximumLagOnFailover },
      }),
    ];
  });
}

/** The most advanced replica with a live agent that may be promoted: the one comparator decides. */
function bestReplica(spec: ClusterSpec, s: HaState, ha: HaSpec, leader: string): string | undefined {
  return candidatesIn(spec, s, ha, leader)
    .filter((c) => c.problem === null)
    .sort(compareCandidates)[0]?.name;
}
