import type { AgentState } from './agent-loop.js';

/** The load-balancer checks, with Patroni's paths: each answers 200 when the node fits, else 503. */
export const CHECK_PATHS = [
  '/primary',
  '/read-write',
  '/replica',
  '/read-only',
  '/sync',
  '/async',
  '/health',
  '/liveness',
  '/readiness',
] as const;
export type CheckPath = (typeof CHECK_PATHS)[number];

export interface CheckAnswer {
  readonly ok: boolean;
  /** Why, in a few words (the body of a GET). */
  readonly why: string;
}

/**
 * Whether this node passes `path` now, from the agent's last loop: a primary only while it holds
 * the leader key (a primary that lost it is about to be fenced and must get no traffic), a replica
 * while its server answers in recovery (and, with `?lag=`, is no further behind than that).
 * `/liveness` fails when the last loop is older than the TTL: the agent is hung or stopped.
 */
export function answerCheck(
  path: CheckPath,
  s: AgentState,
  o: { now: number; ttlMs: number; maxLagBytes?: number | undefined },
): CheckAnswer {
  const local = s.self?.local;
  const leader = s.ha?.view.leader ?? null;
  // Its own record as its last loop made it, not as etcd returned it a loop before.
  const record = s.record;
  const isLeader = leader?.node === s.node && leader.ready && s.leaseSafeUntil > o.now;
  const primary = local?.kind === 'primary' && isLeader;
  const replica = local?.kind === 'replica';
  const lag = record?.lagBytes ?? null;
  const syncNames = leader ? (s.ha?.members.get(leader.node)?.syncStandbys ?? []) : [];
  const isSync = replica && syncNames.includes(s.node);
  switch (path) {
    case '/primary':
    case '/read-write':
      return primary
        ? { ok: true, why: 'primary, holding the leader key' }
        : {
            ok: false,
            why:
              local?.kind === 'primary'
                ? 'runs as primary without the leader key'
                : `not the primary (${local?.kind ?? 'unknown'})`,
          };
    case '/replica': {
      if (!replica) return { ok: false, why: `not a replica (${local?.kind ?? 'unknown'})` };
      if (o.maxLagBytes !== undefined && (lag === null || lag > o.maxLagBytes))
        return {
          ok: false,
          why: `replica, ${lag === null ? 'lag unknown' : `${lag} bytes behind`} (lag= ${o.maxLagBytes})`,
        };
      return { ok: true, why: `replica${lag === null ? '' : `, ${lag} bytes behind`}` };
    }
    case '/read-only':
      return primary || replica
        ? { ok: true, why: primary ? 'primary' : 'replica' }
        : { ok: false, why: `serves no reads (${local?.kind ?? 'unknown'})` };
    case '/sync':
      return isSync
        ? { ok: true, why: 'synchronous standby' }
        : { ok: false, why: 'not a synchronous standby' };
    case '/async':
      return replica && !isSync
        ? { ok: true, why: 'asynchronous standby' }
        : { ok: false, why: 'not an asynchronous standby' };
    case '/health':
      return local?.kind === 'primary' || replica
        ? { ok: true, why: `server runs (${local?.kind})` }
        : { ok: false, why: `server ${local?.kind ?? 'not observed yet'}` };
    case '/liveness': {
      const age = o.now - s.lastLoopAt;
      return s.lastLoopAt > 0 && age <= o.ttlMs
        ? { ok: true, why: `last loop ${age} ms ago` }
        : {
            ok: false,
            why: s.lastLoopAt === 0 ? 'no loop finished yet' : `last loop ${age} ms ago, more than the TTL`,
          };
    }
    case '/readiness':
      if (primary) return { ok: true, why: 'primary' };
      if (replica && local.streaming) return { ok: true, why: 'replica, streaming' };
      return {
        ok: false,
        why: replica ? 'replica, not streaming' : `not ready (${local?.kind ?? 'unknown'})`,
      };
  }
}
