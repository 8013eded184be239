import type { ClusterPool } from '../../src/client/index.js';

/** What an application saw through the pool: its acknowledged writes, and every read's verdict. */
export interface PoolLoadHistory {
  readonly acked: number[];
  /** Writes the pool reported E_OUTCOME_UNKNOWN for: they may or may not have committed. */
  readonly unknown: number[];
  /** Reads after a write's token that did not find that write. */
  readonly misses: number[];
  /** Any other error the application saw. */
  readonly errors: string[];
  /** The longest time between two acknowledged writes (performance.now ms), while it ran. */
  readonly longestGapMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An application on the pool: `workers` loops, each inserting a numbered row into `table`, then
 * reading it back with the write's token, every `pauseMs`. stop() ends it and returns the history.
 */
export function poolLoad(
  pool: ClusterPool,
  table: string,
  o: { workers?: number; pauseMs?: number } = {},
): { readonly history: PoolLoadHistory; stop(): Promise<PoolLoadHistory> } {
  const history = {
    acked: [] as number[],
    unknown: [] as number[],
    misses: [] as number[],
    errors: [] as string[],
    longestGapMs: 0,
  };
  let stopped = false;
  let next = 1;
  let lastAck = performance.now();
  const worker = async () => {
    while (!stopped) {
      const id = next++;
      try {
        const w = await pool.write(`INSERT INTO ${table} VALUES ($1)`, [id]);
        const at = performance.now();
        history.longestGapMs = Math.max(history.longestGapMs, at - lastAck);
        lastAck = at;
        history.acked.push(id);
        const r = await pool.read(`SELECT 1 FROM ${table} WHERE id = $1`, [id], { after: w.token });
        if (r.rows.length !== 1) history.misses.push(id);
      } catch (err) {
        if ((err as { code?: string }).code === 'E_OUTCOME_UNKNOWN') history.unknown.push(id);
        else history.errors.push((err as Error).message);
      }
      await sleep(o.pauseMs ?? 5);
    }
  };
  const running = Array.from({ length: o.workers ?? 4 }, worker);
  return {
    history,
    stop: async () => {
      stopped = true;
      await Promise.all(running);
      return history;
    },
  };
}
