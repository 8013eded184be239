import type { Divergence } from '../observe/wal-divergence.js';

/** What is known, so far, about the node a rejoin brings back as a replica (it is stopped). */
export interface RejoinFacts {
  readonly node: string;
  readonly primary: string;
  /** The flag that asked for a fresh copy (`--reclone`, `--from-backup`), if any. */
  readonly askedReclone: false | '--reclone' | '--from-backup';
  /** Before anything: it streams from the primary, on its timeline, and is not fenced. */
  readonly streamsNow: boolean;
  /** Its data directory holds a cluster (an empty or missing one: a host replaced, a disk wiped). */
  readonly hasData: boolean;
  /** What the journal of an interrupted run of this rejoin says; null on a first run. */
  readonly resumed: {
    /** pg_rewind finished: the directory only needs to start as a standby. */
    readonly rewindDone: boolean;
    /** pgrepl was killed while pg_rewind ran: the directory cannot be trusted. */
    readonly rewindInterrupted: boolean;
    /** pgrepl was killed while it re-cloned the node. */
    readonly recloneBegun: boolean;
  } | null;
  /** The node's history against the primary's, checked after a CHECKPOINT there; null until checked. */
  readonly divergence: Divergence | null;
  /** What pg_rewind said, once it ran. */
  readonly rewound: {
    readonly ok: boolean;
    readonly noRewindRequired: boolean;
    readonly error: string | null;
  } | null;
  /** Started as a standby, the node could not stream: the primary no longer has the WAL it needs. */
  readonly walRemoved: string | null;
}

/** The next thing a rejoin does, with why. */
export type RejoinStep =
  /** It already is what a rejoin makes of it: nothing is stopped or changed. */
  | { kind: 'nothing'; reason: string }
  | { kind: 'check'; reason: string }
  | { kind: 'rewind'; reason: string }
  | { kind: 'reclone'; reason: string }
  | { kind: 'start-only'; method: 'rewind' | 'none needed'; reason: string };

/**
 * Decides how a stopped node comes back as a replica of `primary`, from what is known so far; the
 * operation performs the step and asks again with what it learned. Pure. A node is never started
 * as a standby while its history may not be a prefix of the primary's: a rewind needs the
 * divergence check first, and whatever pg_rewind cannot bring back is re-cloned.
 */
export function decideRejoin(f: RejoinFacts): RejoinStep {
  if (f.askedReclone) return { kind: 'reclone', reason: `asked for with ${f.askedReclone}` };
  if (f.streamsNow && f.resumed === null)
    return { kind: 'nothing', reason: `${f.node} already streams from ${f.primary} on its timeline` };
  if (f.resumed?.rewindInterrupted)
    return {
      kind: 'reclone',
      reason: 'pgrepl was killed while pg_rewind ran, so the directory cannot be trusted',
    };
  if (f.resumed?.recloneBegun)
    return { kind: 'reclone', reason: `pgrepl was killed while it re-cloned ${f.node}` };
  if (!f.hasData && f.resumed?.rewindDone !== true)
    return { kind: 'reclone', reason: `${f.node} has no data directory: a fresh copy of ${f.primary}` };
  // Behind the oldest WAL the primary keeps, the node can never catch up by streaming (after a
  // failover, or a slot lost to max_slot_wal_keep_size): only a fresh copy brings it back.
  if (f.walRemoved !== null) return { kind: 'reclone', reason: f.walRemoved };
  if (f.resumed?.rewindDone)
    return {
      kind: 'start-only',
      method: 'rewind',
      reason: 'pg_rewind finished before pgrepl was interrupted',
    };
  if (f.rewound !== null) {
    if (!f.rewound.ok)
      return {
        kind: 'reclone',
        reason: `pg_rewind could not rewind it: ${f.rewound.error ?? 'unknown error'}`,
      };
    return f.rewound.noRewindRequired
      ? {
          kind: 'start-only',
          method: 'none needed',
          reason: `${f.node} ends where ${f.primary}'s history goes on`,
        }
      : { kind: 'start-only', method: 'rewind', reason: `pg_rewind took ${f.node} back to where it forked` };
  }
  // pg_rewind compares timelines from the control files: the check comes first, or it finds "no
  // rewind required" for a node that diverged on the primary's own timeline (the trap).
  if (f.divergence === null)
    return { kind: 'check', reason: `whether ${f.node}'s history is a prefix of ${f.primary}'s` };
  if (f.divergence.kind === 'diverged')
    return {
      kind: 'reclone',
      reason: `${f.node} diverged from ${f.primary} without a timeline change (pg_rewind cannot see that): ${f.divergence.reason}`,
    };
  // A prefix needs no pg_rewind, and a crashed node must not get one: its crash recovery (which
  // pg_rewind runs first) writes past the fork what it would then have to take back.
  if (f.divergence.kind === 'follows')
    return { kind: 'start-only', method: 'none needed', reason: f.divergence.reason };
  return { kind: 'rewind', reason: f.divergence.reason };
}
