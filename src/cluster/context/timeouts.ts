/**
 * Every time limit an operation waits under, in one frozen value of the context: the CLI uses the
 * defaults, and the agent's `ha:` timings will set theirs here, where every operation reads them.
 */
export interface Timeouts {
  /** A replica reaching `streaming` after it was started, cloned or rewound. */
  readonly streamingMs: number;
  /** A replica following a new primary after a switchover or a promotion. */
  readonly followMs: number;
  /** The switchover target replaying the old primary's shutdown checkpoint. */
  readonly catchUpMs: number;
  /** pg_promote() finishing. */
  readonly promoteMs: number;
  /** A candidate replaying all it received before it is promoted. */
  readonly replayMs: number;
  /** A fast stop of a primary being fenced, before its process group is killed. */
  readonly fenceStopMs: number;
  /** How long a replica's replay, short of what it received, is watched before it counts as stuck. */
  readonly replayWatchMs: number;
  /** A reloaded setting being in effect in a session's backend. */
  readonly reloadMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = Object.freeze({
  streamingMs: 60_000,
  followMs: 30_000,
  catchUpMs: 30_000,
  promoteMs: 60_000,
  replayMs: 30_000,
  fenceStopMs: 10_000,
  replayWatchMs: 200,
  reloadMs: 5_000,
});
