import { parseLsn } from '../../src/postgres/lsn.js';
import type { WriteOp } from './writer.js';
import type { ProbeAck } from './write-probe.js';

/** What a fault run recorded: the client's writes, the direct probes' acknowledgements, the faults. */
export interface RunHistory {
  readonly writes: readonly WriteOp[];
  readonly probes: readonly ProbeAck[];
  readonly faults: readonly { readonly at: number; readonly what: string }[];
}

/** Two nodes that both took writes at the same time, as the probes prove it. */
export interface SplitBrain {
  readonly nodes: readonly [string, string];
  /** When the first one acknowledged a write sent after the second one had acknowledged one. */
  readonly at: number;
  readonly why: string;
}

/**
 * What async mode lets a failover lose: a replica may be promoted while up to `maxLagBytes`
 * (maximumLagOnFailover) behind the last position the leader recorded, and the leader goes on
 * committing after that record until it is fenced, `windowMs` (a loop, a retry and its lease) at most.
 */
export interface LossAllowed {
  readonly maxLagBytes: number;
  readonly windowMs: number;
}

export interface Verdict {
  readonly acknowledged: number;
  /** Acknowledged writes missing from the final table. */
  readonly lost: readonly number[];
  /**
   * Of those, the ones no allowance covers: all of them in sync and quorum modes; in async mode
   * the ones written before what LossAllowed permits to lose.
   */
  readonly lostBeyondBound: readonly number[];
  /** The WAL between the first and the last lost write (0 when at most one was lost). */
  readonly lostWalBytes: number;
  /** Writes whose outcome the client could not know, found committed (allowed: not acknowledged). */
  readonly unknownCommitted: number;
  readonly splitBrain: readonly SplitBrain[];
  /**
   * Per fault: the longest time without an acknowledged write from the fault on (counted from the
   * last acknowledgement before it): how long writes were down as the client saw it; null when no
   * write was acknowledged after the fault.
   */
  readonly writeGapMs: readonly (number | null)[];
}

/**
 * Judges a run: every acknowledged write must be in the final table (`committed`), or, with
 * `allowed` (async mode), lie within what it permits to lose; no two nodes may have accepted writes
 * at overlapping times (splitBrains); and says how long writes were down after each fault.
 */
export function checkHistory(h: RunHistory, committed: ReadonlySet<number>, allowed?: LossAllowed): Verdict {
  const acked = h.writes.filter((w) => w.outcome === 'ok');
  const lostWrites = acked.filter((w) => !committed.has(w.id));
  const lost = lostWrites.map((w) => w.id);
  const unknownCommitted = h.writes.filter((w) => w.outcome === 'unknown' && committed.has(w.id)).length;
  const lsns = lostWrites.flatMap((w) => (w.lsn ? [parseLsn(w.lsn)] : []));
  const span =
    lsns.length < 2 ? 0n : lsns.reduce((a, b) => (b > a ? b : a)) - lsns.reduce((a, b) => (b < a ? b : a));
  return {
    acknowledged: acked.length,
    lost,
    lostBeyondBound: allowed ? beyondBound(acked, lostWrites, allowed) : lost,
    lostWalBytes: Number(span),
    unknownCommitted,
    splitBrain: splitBrains(h.probes),
    writeGapMs: h.faults.map((f) => writeGap(acked, f.at)),
  };
}

/**
 * The lost writes that async mode does not permit to lose. The leader's last record before it was
 * cut off came at most `windowMs` before its last lost write, and held at least what it had
 * acknowledged by then (`floor`): a write at most `maxLagBytes` before that may be lost, and every
 * write after it. One without a known position is beyond the bound.
 */
function beyondBound(acked: readonly WriteOp[], lostWrites: readonly WriteOp[], a: LossAllowed): number[] {
  const last = lostWrites.reduce<WriteOp | null>(
    (l, w) => (l && l.completedAt >= w.completedAt ? l : w),
    null,
  );
  if (last === null) return [];
  const before = acked.filter((w) => w.lsn && w.completedAt <= last.completedAt - a.windowMs);
  const floor = before.length === 0 ? null : parseLsn(before[before.length - 1]?.lsn ?? '0/0');
  return lostWrites
    .filter((w) => !w.lsn || (floor !== null && parseLsn(w.lsn) < floor - BigInt(a.maxLagBytes)))
    .map((w) => w.id);
}

function writeGap(acked: readonly WriteOp[], at: number): number | null {
  const times = acked.map((w) => w.completedAt).sort((a, b) => a - b);
  let gap: number | null = null;
  let prev = times.filter((t) => t < at).pop() ?? at;
  for (const t of times.filter((x) => x >= at)) {
    gap = Math.max(gap ?? 0, t - prev);
    prev = t;
  }
  return gap;
}

/**
 * The probes' acknowledgements in order, in runs of one node each. A node whose run comes back
 * after another node's run was writable while that other one took writes (or became writable
 * again after it had lost the key): a failover must never allow either. One node that stops taking
 * writes before the next one starts is what every failover and switchover looks like.
 */
function splitBrains(probes: readonly ProbeAck[]): SplitBrain[] {
  const sorted = [...probes].sort((a, b) => a.ackAt - b.ackAt);
  const found: SplitBrain[] = [];
  const runs: { node: string; first: ProbeAck }[] = [];
  for (const a of sorted) {
    const run = runs[runs.length - 1];
    if (run?.node !== a.node) runs.push({ node: a.node, first: a });
  }
  const seen = new Map<string, number>();
  runs.forEach((r, i) => {
    const before = seen.get(r.node);
    if (before !== undefined) {
      const other = runs[i - 1] as (typeof runs)[number];
      found.push({
        nodes: [r.node, other.node],
        at: r.first.ackAt,
        why: `${r.node} took writes again at ${r.first.ackAt} after ${other.node} had taken some (run ${before + 1} and run ${i + 1})`,
      });
    }
    seen.set(r.node, i);
  });
  return found;
}
