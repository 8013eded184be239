import type { DcsView } from '../../dcs/ha-values.js';
import type { AgentDecision, AgentSnapshot } from './decide-agent.js';

/**
 * Whether this agent initializes the cluster, or waits for the one that does; null when the
 * cluster exists (or this node holds data) and the usual decisions apply.
 *
 * Exactly one agent initializes: the one that creates the `initialize` key in etcd. It races only
 * where nothing exists anywhere (no key, no leader, no data here, no other server answers), and a
 * node earlier in the spec goes first while its agent lives or may still start (the first node of
 * the spec becomes the primary, as with `pgrepl up`); a node that may never be primary never does.
 * An agent that finds data writes the key first (the loop does), so a cluster made by `up` is
 * never initialized again. A claim that was not finished (the agent died at it) is its claimant's
 * to finish: it starts over, the partial data moved aside (one that failed is paced, decideAgent).
 */
export function decideBootstrap(s: AgentSnapshot, dcs: DcsView): AgentDecision | null {
  const { local } = s;
  const empty = local.kind === 'stopped' && !local.initialized;
  const init = dcs.initialize;
  if (init?.done === true) return null;
  if (init !== null) {
    if (init.node === s.me) {
      // Announced: replicas may have cloned from it, clients written to it. Never started over.
      if (dcs.lastLeaderLsn?.node === s.me)
        return {
          kind: 'initialize',
          step: 'record',
          reason: 'my primary was announced before the initialization was recorded as done: recording it',
        };
      return {
        kind: 'initialize',
        step: 'over',
        reason: empty
          ? 'I claimed the initialization of the cluster: initializing it here'
          : 'I began initializing the cluster and did not finish: starting over (the partial data directory is moved aside)',
      };
    }
    if (!empty) return null;
    return {
      kind: 'wait',
      reason: `${init.node} is initializing the cluster: cloning from it once it leads`,
    };
  }
  if (dcs.leader !== null || !empty) return null;
  if (s.noFailover || s.failoverPriority === 0)
    return {
      kind: 'wait',
      reason:
        'no cluster yet; this node is marked never to be primary (noFailover or failoverPriority 0): waiting for another to initialize it',
    };
  const running = s.peers.find((p) => p.inRecovery !== null);
  if (running)
    return {
      kind: 'wait',
      reason: `no initialize key in etcd, but ${running.name}'s server answers: waiting for its agent to record the cluster (never a second one)`,
    };
  const earlier = s.peers
    .filter((p) => p.specIndex < s.specIndex && !p.noFailover && p.failoverPriority > 0)
    .sort((a, b) => a.specIndex - b.specIndex);
  const alive = earlier.find((p) => p.agentAlive);
  if (alive)
    return {
      kind: 'wait',
      reason: `no cluster yet; ${alive.name}, earlier in the spec, initializes it`,
    };
  const first = earlier[0];
  const waited = s.now - s.startedAt;
  if (first && waited < s.bootstrapGraceMs)
    return {
      kind: 'wait',
      reason: `no cluster yet; ${first.name}, earlier in the spec, initializes it if its agent starts within ${Math.ceil((s.bootstrapGraceMs - waited) / 1000)} s`,
    };
  if (!(s.leaseSafeUntil > s.now))
    return { kind: 'wait', reason: 'no cluster yet; no lease of my own to claim it with yet' };
  return {
    kind: 'initialize',
    step: 'claim',
    reason: first
      ? `no cluster yet, and no agent of a node earlier in the spec came within ${Math.round(s.bootstrapGraceMs / 1000)} s: initializing it here`
      : 'no cluster yet (no initialize key, no leader, no server answers): initializing it here',
  };
}
