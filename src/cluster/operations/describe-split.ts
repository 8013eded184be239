import { readTimelineHistory } from '../../postgres/promotion.js';
import type { TimelineHistory } from '../../postgres/promotion.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { controlOf } from '../actions/control-of.js';
import { nodeOf, sqlOn } from '../context/node-sql.js';
import { describeDiscarded } from '../decide/wal-description.js';

/** Where two histories parted: the older timeline's end in the newer one's history, when they differ. */
export function forkPoint(a: TimelineHistory, b: TimelineHistory): string | null {
  const [older, newer] = a.current <= b.current ? [a, b] : [b, a];
  if (older.current === newer.current) return null;
  return newer.history.find((h) => h.timeline === older.current)?.endedAt ?? null;
}

/**
 * One line per writable node of a split brain: its timeline, its WAL position, and what it wrote
 * since the two forked (its commits, read from its own pg_wal). Best effort: what cannot be read is
 * said so, since this only informs the user's choice of a survivor.
 */
export async function describeSplit(ctx: ClusterContext, sides: readonly string[]): Promise<string[]> {
  const facts = await Promise.all(
    sides.map(async (name) => {
      const node = nodeOf(ctx, name);
      const read = await sqlOn(ctx, node, async (s) => {
        const [row] = await s.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
        return { lsn: row?.lsn ?? '?', history: await readTimelineHistory(s) };
      }).catch(() => null);
      return { node, read };
    }),
  );
  const [a, b] = facts;
  const fork = a?.read && b?.read ? forkPoint(a.read.history, b.read.history) : null;
  return Promise.all(
    facts.map(async ({ node, read }) => {
      if (!read) return `${node.name}: does not answer`;
      const where = `${node.name}: timeline ${read.history.current}, WAL at ${read.lsn}`;
      if (fork === null) return `${where} (they are on one timeline: where they forked is not known)`;
      const own = ctx.localNodes.has(node.name) ? await controlOf(ctx, node).commitsAfter(fork) : null;
      return `${where}; since the fork at ${fork}: ${own ? describeDiscarded(own) : 'its WAL cannot be read here'}`;
    }),
  );
}
