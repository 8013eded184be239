import { formatLsn, parseLsn, walFileStart } from '../../postgres/lsn.js';
import { readTimelineHistory } from '../../postgres/promotion.js';
import type { TimelineHistory } from '../../postgres/promotion.js';
import type { ControlData } from '../../postgres/read-controldata.js';
import type { LostWal } from '../../postgres/run-rewind.js';
import type { SqlSession } from '../../postgres/sql-client.js';
import { readServerWal } from '../../postgres/wal-bytes.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import { diskOf } from './disk-of.js';
import type { NodeDisk } from './node-disk.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { walDivergence } from './wal-divergence.js';
import type { Divergence, PrimaryFacts } from './wal-divergence.js';

/** How many bytes at a checkpoint are compared: a record header (24) with its CRC, and a little more. */
const RECORD_WINDOW = 32;

export interface DivergenceCheck {
  readonly divergence: Divergence;
  readonly control: ControlData;
  /** The primary's timeline history, as read for the check. */
  readonly history: TimelineHistory;
  /** Diverged on the primary's timeline: the WAL only this node has, from the fork on, with its commits. */
  readonly ownWal: LostWal | null;
}

/**
 * Compares a stopped node's history with the running primary's, before anything turns the node's
 * directory into a standby: its own disk (control file, WAL) against what the primary answers over
 * `s` (its timeline history, flush position and WAL bytes, read with SQL so the primary may be on
 * another host).
 */
export async function checkDivergence(
  ctx: ClusterContext,
  node: NodeSpec,
  s: SqlSession,
): Promise<DivergenceCheck> {
  const own = diskOf(ctx, node);
  const [control, history, flush] = await Promise.all([
    own.readControlData(),
    readTimelineHistory(s),
    s.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn'),
  ]);
  const flushLsn = flush[0]?.lsn ?? '0/0';
  const sameTimeline = control.timeline === history.current;
  const primary: PrimaryFacts = {
    timeline: history.current,
    history: history.history,
    flushLsn,
    recordAtCheckpoint: sameTimeline
      ? await compareAt(own, s, control, parseLsn(control.checkpointLsn), parseLsn(flushLsn))
      : 'unknown',
  };
  // On an older timeline, where its own WAL ends tells whether it went past the fork; WAL of a
  // later timeline in its pg_wal (a replica that followed one) goes on past what that reads.
  const walEnd =
    !sameTimeline && own.newestWalTimeline() === control.timeline ? await own.walEnd(control) : null;
  const divergence = walDivergence(
    {
      state: control.state,
      timeline: control.timeline,
      checkpointLsn: control.checkpointLsn,
      backupLabel: own.hasBackupLabel(),
      walEnd,
    },
    primary,
  );
  const ownWal =
    divergence.kind === 'diverged'
      ? await ownWalSinceFork(own, s, control, parseLsn(flushLsn)).catch(() => null)
      : null;
  return { divergence, control, history, ownWal };
}

/** Whether the node's WAL at `at` is the primary's, up to RECORD_WINDOW bytes or the primary's end. */
async function compareAt(
  node: NodeDisk,
  s: SqlSession,
  control: ControlData,
  at: bigint,
  flush: bigint,
  length = RECORD_WINDOW,
): Promise<'same' | 'different' | 'unknown'> {
  const both = await readBoth(node, s, control, at, flush, length);
  if (both === null) return 'unknown';
  const [own, theirs] = both;
  if (own === null || theirs === null || own.length !== theirs.length) return 'unknown';
  return own.equals(theirs) ? 'same' : 'different';
}

/**
 * The node's own WAL and the primary's at `at`, `length` bytes but not past the primary's end
 * (each null when that side lacks the segment); null when the primary has nothing there.
 */
async function readBoth(
  node: NodeDisk,
  s: SqlSession,
  control: ControlData,
  at: bigint,
  flush: bigint,
  length: number,
): Promise<[Buffer | null, Buffer | null] | null> {
  const n = Number(flush - at < BigInt(length) ? flush - at : BigInt(length));
  if (n <= 0) return null;
  const seg = control.walSegmentBytes;
  return [node.readWal(control.timeline, at, n, seg), await readServerWal(s, control.timeline, at, n, seg)];
}

/**
 * The WAL a node diverged with, found by bisecting its WAL pages against the primary's (a page
 * the primary does not have counts as the same: only old segments are gone, and the fork lies
 * after them), then the first record whose bytes differ. Searched from the node's oldest segment
 * on its timeline up to its last checkpoint, which it wrote itself.
 */
async function ownWalSinceFork(
  node: NodeDisk,
  s: SqlSession,
  control: ControlData,
  flush: bigint,
): Promise<LostWal> {
  const page = BigInt(control.walBlockBytes);
  const oldest = node.oldestWalSegment(control.timeline);
  const cp = parseLsn(control.checkpointLsn);
  let lo = oldest === undefined ? cp - (cp % page) : walFileStart(oldest, control.walSegmentBytes);
  let hi = cp - (cp % page);
  const differs = async (p: bigint) =>
    p >= flush || (await compareAt(node, s, control, p, flush, Number(page))) === 'different';
  // Its checkpoint page not differing cannot happen for a diverged node; then say from there.
  let fork = cp;
  const checkpointPageDiffers = await differs(hi);
  if (checkpointPageDiffers && (await differs(lo))) {
    fork = lo;
  } else if (checkpointPageDiffers) {
    // Invariant: page lo is the primary's, page hi is not.
    while (hi - lo > page) {
      const mid = lo + ((hi - lo) / page / 2n) * page;
      if (await differs(mid)) hi = mid;
      else lo = mid;
    }
    const firstByte = await firstDifference(node, s, control, hi, Number(page), flush);
    const starts = await node.listRecordStarts(control.timeline, lo, firstByte + 1n);
    fork = starts.filter((x) => x <= firstByte).at(-1) ?? firstByte;
  }
  const own = await node.commitsAfter(formatLsn(fork), control);
  if (own === null) throw new Error(`the WAL of ${node.node.name} cannot be read`);
  return own;
}

/** The first byte of page `p` where the node's WAL and the primary's differ (the primary's end at the latest). */
async function firstDifference(
  node: NodeDisk,
  s: SqlSession,
  control: ControlData,
  p: bigint,
  page: number,
  flush: bigint,
): Promise<bigint> {
  const both = await readBoth(node, s, control, p, flush, page);
  if (both === null) return flush;
  const [own, theirs] = both.map((b) => b ?? Buffer.alloc(0)) as [Buffer, Buffer];
  const n = Math.min(own.length, theirs.length);
  for (let i = 0; i < n; i++) if (own[i] !== theirs[i]) return p + BigInt(i);
  return p + BigInt(n);
}
