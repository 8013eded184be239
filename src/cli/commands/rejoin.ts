import { runRejoin } from '../../cluster/operations/run-rejoin.js';
import { describeDiscarded } from '../../cluster/decide/wal-description.js';
import { changing, commandContext } from '../command-context.js';
import { requireBackup } from '../../cluster/actions/backup-actions.js';
import type { GlobalOptions } from '../command-context.js';

/** `rejoin NODE [--reclone]` */
export async function runRejoinCommand(
  g: GlobalOptions,
  node: string,
  o: { reclone?: boolean; keep?: string; json?: boolean; fromBackup?: boolean },
): Promise<number> {
  const ctx = await commandContext(g);
  if (o.fromBackup) requireBackup(ctx);
  const r = await changing(ctx, 'rejoin', () =>
    runRejoin(ctx, node, { reclone: o.reclone === true, keep: o.keep, fromBackup: o.fromBackup === true }),
  );
  if (o.json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return 0;
  }
  const lines = [
    `${r.node} streams from ${r.primary} again (${r.method}, ${(r.ms / 1000).toFixed(1)} s${r.rewindCopiedMb === null ? '' : `, ${r.rewindCopiedMb} MB copied`}).`,
  ];
  if (r.recloneReason) lines.push(`re-cloned because ${r.recloneReason}`);
  if (r.discarded) lines.push(`thrown away, it existed only on ${r.node}: ${describeDiscarded(r.discarded)}`);
  if (r.movedAside)
    lines.push(`the old data directory was moved to ${r.movedAside}; remove it when you no longer need it`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
