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

export interface Verdict {
  readonly acknowledged: number;
  /** Acknowledged writes missing from the final table. */
  readonly lost: readonly number[];
  /** Writes whose outcome the client could not know, found committed (allowed: not acknowledged). */
  readonly unknownCommitted: number;
  readonly splitBrain: readonly SplitBrain[];
  /** Per fault: from its injection to the first write acknowledged after it; null: none came. */
  readonly recoveryMs: readonly (number | null)[];
}

/**
 * Judges a run: every acknowledged write must be in the final table (`committed`), and no two nodes
 * may have accepted writes at overlapping times (splitBrains), and says how long each fault took
 * to recover from.
 */
export function checkHistory(h: RunHistory, committed: ReadonlySet<number>): Verdict {
  const acked = h.writes.filter((w) => w.outcome === 'ok');
  const lost = acked.map((w) => w.id).filter((id) => !committed.has(id));
  const unknownCommitted = h.writes.filter((w) => w.outcome === 'unknown' && committed.has(w.id)).length;
  return {
    acknowledged: acked.length,
    lost,
    unknownCommitted,
    splitBrain: splitBrains(h.probes),
    recoveryMs: h.faults.map((f) => {
      const first = acked.filter((w) => w.invokedAt >= f.at).sort((a, b) => a.completedAt - b.completedAt)[0];
      return first ? first.completedAt - f.at : null;
    }),
  };
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
