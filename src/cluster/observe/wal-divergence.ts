import { parseLsn } from '../../postgres/lsn.js';
import type { TimelineSwitch } from '../../postgres/promotion.js';

/** What a stopped node's own disk says about the history it holds. */
export interface StoppedNodeFacts {
  /** pg_controldata's "Database cluster state". */
  readonly state: string;
  readonly timeline: number;
  /** Its last checkpoint (or restartpoint) record. */
  readonly checkpointLsn: string;
  /** A backup_label: a fresh copy (pg_basebackup or pg_rewind) that has not started yet. */
  readonly backupLabel: boolean;
  /**
   * Where its valid WAL ends, read from its own pg_wal; null when not read (it is on the primary's
   * timeline) or when that cannot be told (its WAL goes on in a later timeline, a page is unusable).
   */
  readonly walEnd: string | null;
}

/** What the running primary says, over SQL. */
export interface PrimaryFacts {
  readonly timeline: number;
  /** The timelines that led to the current one, each with where it ended. */
  readonly history: readonly TimelineSwitch[];
  /** pg_current_wal_flush_lsn(). */
  readonly flushLsn: string;
  /**
   * Whether the WAL bytes at the node's checkpoint are the same in the primary's WAL: 'same',
   * 'different', or 'unknown' (the primary no longer has that segment, or has not written that far).
   */
  readonly recordAtCheckpoint: 'same' | 'different' | 'unknown';
}

export type Divergence =
  /** Its WAL is a prefix of the primary's: it may stream as it is. */
  | { kind: 'follows'; reason: string }
  /** It went on past where its timeline forked off the primary's: pg_rewind's case. */
  | { kind: 'forked-timeline'; reason: string }
  /** It wrote WAL of its own on the primary's very timeline: pg_rewind sees nothing, only a re-clone helps. */
  | { kind: 'diverged'; reason: string };

/** Control file states of a server that ran as a primary (not in recovery) when it stopped or died. */
const RAN_AS_PRIMARY = new Set(['shut down', 'in production', 'shutting down']);

/**
 * Whether a stopped node can stream from the primary as it is: a fact about two WAL histories,
 * which the observation carries (decisions such as rejoin's read it; nothing here is chosen). Pure. Timelines alone miss a node
 * started without standby.signal: it runs as a primary on the *same* timeline (no archive recovery,
 * no new timeline), and pg_rewind then says "no rewind required" about a directory whose pages no
 * longer match the WAL it would replay. So on the primary's timeline the node's own facts decide:
 * a control file that says it ran as a primary, a checkpoint past the primary's WAL, or a record at
 * its checkpoint that is not the primary's record there.
 */
export function walDivergence(node: StoppedNodeFacts, primary: PrimaryFacts): Divergence {
  const cp = node.checkpointLsn;
  if (node.timeline !== primary.timeline) {
    const branch = primary.history.find((h) => h.timeline === node.timeline);
    if (!branch)
      return {
        kind: 'forked-timeline',
        reason: `it is on timeline ${node.timeline}, which is not in the history of the primary's timeline ${primary.timeline}`,
      };
    // Its WAL up to the fork is the primary's own (the primary received it from there), and its
    // pages hold nothing its WAL does not: ending at or before the fork, it is a prefix. A primary
    // that died at once in sync mode usually ends right there, and pg_rewind's crash recovery would
    // first write past the fork what it then has to rewind.
    if (node.walEnd !== null && parseLsn(node.walEnd) <= parseLsn(branch.endedAt)) {
      const where = node.walEnd === branch.endedAt ? 'where' : 'before';
      const at = node.walEnd === branch.endedAt ? '' : ` at ${branch.endedAt}`;
      return {
        kind: 'follows',
        reason: `its WAL ends at ${node.walEnd} on timeline ${node.timeline}, ${where} the primary's timeline ${primary.timeline} forked off it${at}`,
      };
    }
    // A primary's clean stop ends its WAL just past the shutdown checkpoint. Past that, only
    // pg_rewind (reading the node's WAL) can tell whether it wrote on after the fork.
    const clean = node.state === 'shut down';
    if (clean && parseLsn(cp) < parseLsn(branch.endedAt))
      return {
        kind: 'follows',
        reason: `it stopped cleanly at ${cp} on timeline ${node.timeline}, before the primary's timeline ${primary.timeline} forked off it at ${branch.endedAt}`,
      };
    return {
      kind: 'forked-timeline',
      reason: `its timeline ${node.timeline} forked off the primary's at ${branch.endedAt} and it ${clean ? `went on to ${cp}` : `may have WAL past it (${node.state})`}`,
    };
  }
  if (node.backupLabel) return { kind: 'follows', reason: 'it is a fresh copy that has not started yet' };
  const tl = `timeline ${node.timeline}`;
  if (RAN_AS_PRIMARY.has(node.state))
    return {
      kind: 'diverged',
      reason: `its control file says "${node.state}": it ran as a primary on the primary's own ${tl} and wrote WAL the primary does not have`,
    };
  if (parseLsn(cp) > parseLsn(primary.flushLsn))
    return {
      kind: 'diverged',
      reason: `its last checkpoint ${cp} lies past the end of the primary's WAL (${primary.flushLsn}) on the same ${tl}`,
    };
  if (primary.recordAtCheckpoint === 'different')
    return {
      kind: 'diverged',
      reason: `the WAL record at its last checkpoint ${cp} is not the primary's record there on the same ${tl}`,
    };
  return {
    kind: 'follows',
    reason:
      primary.recordAtCheckpoint === 'same'
        ? `its last checkpoint ${cp} is the primary's record there`
        : `it stopped as a replica (${node.state}) at ${cp}; the primary no longer holds that WAL to compare`,
  };
}
