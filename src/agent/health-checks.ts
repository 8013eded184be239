import type { AgentState } from './agent-loop.js';

/**
 * The load-balancer checks, with Patroni's paths and aliases (its REST API's health-check part):
 * each answers 200 when the node fits, else 503, to GET, HEAD and OPTIONS alike.
 */
export const CHECK_PATHS = [
  '/',
  '/primary',
  '/master',
  '/read-write',
  '/leader',
  '/standby-leader',
  '/standby_leader',
  '/replica',
  '/read-only',
  '/sync',
  '/synchronous',
  '/read-only-sync',
  '/read-only-synchronous',
  '/quorum',
  '/read-only-quorum',
  '/async',
  '/asynchronous',
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

/** What a check's query string asks beyond its path (Patroni's parameters). */
export interface CheckQuery {
  /** `?lag=`: the most WAL a standby may not have replayed, in bytes. */
  readonly maxLagBytes?: number | undefined;
  /** `?replication_state=`: `streaming`, or `in archive recovery` for a standby that is not. */
  readonly replicationState?: string | undefined;
  /** `?tag_KEY=VALUE`: the node's tags must hold each. */
  readonly tags?: Readonly<Record<string, string>>;
  /** `/readiness?mode=`: lag of replayed (apply, the default) or received (write) WAL. */
  readonly mode?: 'apply' | 'write' | undefined;
}

export interface CheckContext {
  readonly now: number;
  readonly ttlMs: number;
  /** `/readiness` without `?lag=` allows this much. */
  readonly maximumLagOnFailover: number;
  /** The node's tags, as Patroni's `tags` (nofailover, failover_priority). */
  readonly nodeTags: Readonly<Record<string, string>>;
  readonly query: CheckQuery;
}

/**
 * Whether this node passes `path` now, from the agent's last loop, as Patroni's API answers it: a
 * primary only while it holds the leader key on its live lease (a primary that lost it is about
 * to be fenced and must get no traffic); a replica while its server answers in recovery, within
 * `?lag=` of the leader's recorded position (replayed WAL), in `?replication_state=`, with the
 * `?tag_…` asked. A primary whose writes are refused by default (`pgrepl upgrade`'s fence) fails the
 * read-write checks: a load balancer over both clusters then sends writes only to the one that
 * takes them. `/liveness` fails when the last loop is older than the TTL on a primary, twice
 * that on a replica (an agent hung or stopped).
 */
export function answerCheck(path: CheckPath, s: AgentState, o: CheckContext): CheckAnswer {
  const local = s.self?.local;
  const leader = s.ha?.view.leader ?? null;
  const holdsKey = leader?.node === s.node && s.leaseSafeUntil > o.now;
  const primary = local?.kind === 'primary' && holdsKey && leader.ready;
  const leaderRecord = leader ? s.ha?.members.get(leader.node) : undefined;
  const isQuorum = (leaderRecord?.quorumStandbys ?? []).includes(s.node);
  const isSync = !isQuorum && (leaderRecord?.syncStandbys ?? []).includes(s.node);
  const replica = replicaAnswer(s, o);
  const unlessPrimary = (a: CheckAnswer): CheckAnswer => (primary ? { ok: true, why: 'primary' } : a);
  switch (path) {
    case '/':
    case '/primary':
    case '/master':
    case '/read-write':
      if (primary && s.self?.instance?.writesRefused === true)
        return { ok: false, why: 'primary refusing writes (default_transaction_read_only: an upgrade)' };
      return primary
        ? { ok: true, why: 'primary, holding the leader key' }
        : {
            ok: false,
            why:
              local?.kind === 'primary'
                ? 'runs as primary without the leader key'
                : `not the primary (${local?.kind ?? 'unknown'})`,
          };
    case '/leader':
      return holdsKey
        ? { ok: true, why: 'holds the leader key' }
        : { ok: false, why: 'does not hold the leader key' };
    case '/standby-leader':
    case '/standby_leader':
      return { ok: false, why: 'pgrepl runs no standby clusters' };
    case '/replica':
      return replica;
    case '/read-only':
      return unlessPrimary(replica);
    case '/sync':
    case '/synchronous':
      return isSync ? replica : { ok: false, why: 'not a synchronous standby' };
    case '/read-only-sync':
    case '/read-only-synchronous':
      return unlessPrimary(
        isSync ? replica : { ok: false, why: 'neither primary nor a synchronous standby' },
      );
    case '/quorum':
      return isQuorum ? replica : { ok: false, why: 'not a quorum standby' };
    case '/read-only-quorum':
      return unlessPrimary(isQuorum ? replica : { ok: false, why: 'neither primary nor a quorum standby' });
    case '/async':
    case '/asynchronous':
      return isSync || isQuorum ? { ok: false, why: 'not an asynchronous standby' } : replica;
    case '/health':
      return local?.kind === 'primary' || local?.kind === 'replica'
        ? { ok: true, why: `server runs (${local.kind})` }
        : { ok: false, why: `server ${local?.kind ?? 'not observed yet'}` };
    case '/liveness': {
      const age = o.now - s.lastLoopAt;
      // A replica's agent may be slow longer: the leader key does not depend on it.
      const limit = o.ttlMs * (local?.kind === 'primary' ? 1 : 2);
      return s.lastLoopAt > 0 && age <= limit
        ? { ok: true, why: `last loop ${age} ms ago` }
        : {
            ok: false,
            why:
              s.lastLoopAt === 0 ? 'no loop finished yet' : `last loop ${age} ms ago, more than ${limit} ms`,
          };
    }
    case '/readiness':
      return readiness(s, o, holdsKey);
  }
}

/** Patroni's replica check: a running standby, within the lag, in the state, with the tags asked. */
function replicaAnswer(s: AgentState, o: CheckContext): CheckAnswer {
  const local = s.self?.local;
  if (local?.kind !== 'replica') return { ok: false, why: `not a replica (${local?.kind ?? 'unknown'})` };
  const lag = s.record?.replayLagBytes ?? null;
  const { maxLagBytes, replicationState, tags = {} } = o.query;
  if (maxLagBytes !== undefined && lag !== null && lag > maxLagBytes)
    return { ok: false, why: `replica, ${lag} bytes not replayed (lag= ${maxLagBytes})` };
  const state = local.streaming ? 'streaming' : 'in archive recovery';
  if (replicationState !== undefined && replicationState !== state)
    return { ok: false, why: `replica, ${state} (replication_state= ${replicationState})` };
  const missing = Object.entries(tags).find(([k, v]) => o.nodeTags[k] !== v);
  if (missing) return { ok: false, why: `replica, tag ${missing[0]} is not ${missing[1]}` };
  return { ok: true, why: `replica, ${state}${lag === null ? '' : `, ${lag} bytes not replayed`}` };
}

/** Patroni's readiness: the leader, or a streaming standby within the lag (maximumLagOnFailover by default). */
function readiness(s: AgentState, o: CheckContext, holdsKey: boolean): CheckAnswer {
  const local = s.self?.local;
  if (holdsKey) return { ok: true, why: 'holds the leader key' };
  if (local?.kind !== 'replica') return { ok: false, why: `not ready (${local?.kind ?? 'unknown'})` };
  if (!local.streaming) return { ok: false, why: 'replica, not streaming' };
  const max = o.query.maxLagBytes ?? o.maximumLagOnFailover;
  const mode = o.query.mode ?? 'apply';
  const lag = mode === 'apply' ? (s.record?.replayLagBytes ?? null) : (s.record?.lagBytes ?? null);
  if (lag !== null && lag > max) return { ok: false, why: `replica, ${mode} lag ${lag} bytes > ${max}` };
  return { ok: true, why: 'replica, streaming' };
}
