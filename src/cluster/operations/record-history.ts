import { readInstanceState } from '../../postgres/instance-queries.js';
import { nodeOf, sqlOn } from '../context/node-sql.js';
import type { ClusterContext } from '../context/cluster-context.js';
import type { HistoryEntry } from '../store/cluster-store.js';

/**
 * Keeps what an operation did in the cluster's history, with the timeline its primary is on now.
 * Best effort: an operation that finished is not failed because its history could not be written.
 */
export async function recordHistory(
  ctx: ClusterContext,
  e: Omit<HistoryEntry, 'at' | 'timeline'> & { primary: string | null },
): Promise<void> {
  const { primary, ...entry } = e;
  try {
    const timeline =
      primary === null ? null : (await sqlOn(ctx, nodeOf(ctx, primary), readInstanceState)).timeline;
    await ctx.store.appendHistory({ at: new Date(ctx.clock.wallNow()).toISOString(), ...entry, timeline });
  } catch (err) {
    ctx.events.emit({
      event: 'note',
      message: `the history could not be written: ${(err as Error).message}`,
    });
  }
}
