import type { AgentDecision } from './decide-agent.js';

/** Which of the agent's executors carries a decision out. */
export type Executor =
  /** Writes the leader key: takes it, promotes under it, announces it, gives it up. */
  | 'leadership'
  /** Starts or stops its own server in place. */
  | 'server'
  /** A switchover step: hand over, wait for WAL, make the others' slots. */
  | 'switchover'
  /** Makes its server a standby of another node, or tidies one. */
  | 'standby'
  /** What a leader does every loop: record its position and synchronous set. */
  | 'leading'
  | 'none';

/**
 * What the watchdog does about the server while a decision is carried out:
 * - `writable`: the server may take writes: the watchdog is armed to the lease's end;
 * - `standby`: the server is made a standby: disarmed;
 * - `as-observed`: armed if a postmaster runs that is not the replica the loop observed, else disarmed.
 */
export type FencePolicy = 'writable' | 'standby' | 'as-observed';

/** One row of the table: what a decision kind may do. */
export interface DecisionTraits {
  /** Its server runs as a writable primary, under the key this agent holds on its live lease. */
  readonly runsAsPrimary: boolean;
  /**
   * Its action leaves the server other than the loop observed it (started, stopped, re-pointed,
   * rebuilt), and the next loop looks at once. A promotion observes its own result.
   */
  readonly changesServer: boolean;
  /** Its action writes the leader key: what the API answers is read again after it. */
  readonly changesKey: boolean;
  readonly fence: FencePolicy;
  readonly executor: Executor;
}

/**
 * Every decision kind and what it may do, in one place (pg_auto_failover keeps its transitions in
 * a table the same way, fsm.c): the loop, the fence guard and the executors read it, and a test
 * holds decideAgent to it.
 */
export const DECISIONS: Readonly<Record<AgentDecision['kind'], DecisionTraits>> = Object.freeze({
  // Holds the key on its live lease with its server as primary: the only state that takes writes.
  lead: {
    runsAsPrimary: true,
    changesServer: false,
    changesKey: false,
    fence: 'writable',
    executor: 'leading',
  },
  // A running primary takes the free key (no one holds it, no other primary answers): writable
  // once it holds it, so armed as one.
  'take-key': {
    runsAsPrimary: false,
    changesServer: false,
    changesKey: true,
    fence: 'writable',
    executor: 'leadership',
  },
  // A replica races for the key and, winning, promotes: armed before it may take writes.
  race: {
    runsAsPrimary: false,
    changesServer: false,
    changesKey: true,
    fence: 'writable',
    executor: 'leadership',
  },
  promote: {
    runsAsPrimary: false,
    changesServer: false,
    changesKey: true,
    fence: 'writable',
    executor: 'leadership',
  },
  // Promoted under the key: marks it ready so that the replicas follow.
  announce: {
    runsAsPrimary: true,
    changesServer: false,
    changesKey: true,
    fence: 'writable',
    executor: 'leadership',
  },
  // The first primary of a cluster with no data: claims the initialize key, takes the leader key
  // (armed before the server exists), runs initdb, the role and the slots, then announces itself.
  initialize: {
    runsAsPrimary: false,
    changesServer: true,
    changesKey: true,
    fence: 'writable',
    executor: 'leadership',
  },
  // A crashed primary started in place under the key it holds.
  restart: {
    runsAsPrimary: true,
    changesServer: true,
    changesKey: false,
    fence: 'writable',
    executor: 'server',
  },
  // Stops its server, then gives up the key.
  release: {
    runsAsPrimary: false,
    changesServer: true,
    changesKey: true,
    fence: 'as-observed',
    executor: 'leadership',
  },
  fence: {
    runsAsPrimary: false,
    changesServer: true,
    changesKey: false,
    fence: 'as-observed',
    executor: 'server',
  },
  // Stops its server cleanly and gives up the key; the loop then waits to be told of the new leader.
  'hand-over': {
    runsAsPrimary: false,
    changesServer: false,
    changesKey: true,
    fence: 'as-observed',
    executor: 'switchover',
  },
  'await-wal': {
    runsAsPrimary: false,
    changesServer: false,
    changesKey: false,
    fence: 'as-observed',
    executor: 'switchover',
  },
  'make-slots': {
    runsAsPrimary: false,
    changesServer: false,
    changesKey: false,
    fence: 'as-observed',
    executor: 'switchover',
  },
  follow: {
    runsAsPrimary: false,
    changesServer: true,
    changesKey: false,
    fence: 'standby',
    executor: 'standby',
  },
  'start-replica': {
    runsAsPrimary: false,
    changesServer: true,
    changesKey: false,
    fence: 'standby',
    executor: 'standby',
  },
  'start-standby': {
    runsAsPrimary: false,
    changesServer: true,
    changesKey: false,
    fence: 'standby',
    executor: 'standby',
  },
  rejoin: {
    runsAsPrimary: false,
    changesServer: true,
    changesKey: false,
    fence: 'standby',
    executor: 'standby',
  },
  'drop-slots': {
    runsAsPrimary: false,
    changesServer: false,
    changesKey: false,
    fence: 'as-observed',
    executor: 'standby',
  },
  wait: {
    runsAsPrimary: false,
    changesServer: false,
    changesKey: false,
    fence: 'as-observed',
    executor: 'none',
  },
});

/** The decisions under which this node's server runs as a writable primary. */
export const RUNS_AS_PRIMARY: ReadonlySet<AgentDecision['kind']> = new Set(
  (Object.keys(DECISIONS) as AgentDecision['kind'][]).filter((k) => DECISIONS[k].runsAsPrimary),
);

export type FenceOrderDecision =
  | { readonly kind: 'arm'; readonly until: number; readonly pid: number | null; readonly reason: string }
  | { readonly kind: 'disarm'; readonly reason: string };

/**
 * What the fence watchdog is told after a loop's action: a postmaster here that may take writes
 * must be gone by the time the lease (or, in failsafe, the members' promise) could run out.
 */
export function decideFence(o: {
  readonly policy: FencePolicy;
  /** The postmaster running now; null when none does. */
  readonly pid: number | null;
  /** The loop observed a replica, with this postmaster. */
  readonly observedReplicaPid: number | null;
  /** Until when its server may take writes: the lease's safe end, or the failsafe promise's. */
  readonly writableUntil: number;
  readonly now: number;
  /** It holds the key and its primary is being started in place (no PID known yet). */
  readonly restartingUnderKey: boolean;
  /**
   * An operator's restart of this node ran during the loop, without the key, on a data directory
   * with standby.signal: the postmaster running now is the standby it started, which the loop did
   * not observe (standby.signal goes before a promoted server takes its first write).
   */
  readonly restartingStandby: boolean;
}): FenceOrderDecision {
  const until = o.writableUntil > 0 ? o.writableUntil : o.now;
  if (o.policy === 'standby') return { kind: 'disarm', reason: 'made a standby' };
  if (o.policy === 'as-observed' && o.pid !== null && o.pid === o.observedReplicaPid)
    return { kind: 'disarm', reason: 'still the replica observed' };
  // Not a postmaster the loop did not see come: the restart's own, which the next loop observes.
  if (o.policy === 'as-observed' && o.restartingStandby)
    return { kind: 'disarm', reason: 'a standby an operator restarts' };
  if (o.pid !== null) return { kind: 'arm', until, pid: o.pid, reason: 'a postmaster that may take writes' };
  // A leader whose primary is being started in place stays fenced while no PID is known: the
  // watchdog then kills whichever postmaster owns the data directory at the deadline.
  if (o.restartingUnderKey) return { kind: 'arm', until, pid: null, reason: 'a primary starting in place' };
  return { kind: 'disarm', reason: 'no postmaster runs' };
}
