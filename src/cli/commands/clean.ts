import { formatBytes } from '../../cluster/decide/status-report.js';
import { listMovedAside, removeMovedAside } from '../../cluster/operations/clean-moved-aside.js';
import { changing, commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';

/** `clean [--yes]`: lists, and with --yes deletes, the old data directories re-clones moved aside. */
export async function runClean(g: GlobalOptions, o: { yes?: boolean; json?: boolean }): Promise<number> {
  const ctx = await commandContext(g);
  const found = listMovedAside(ctx);
  const total = found.reduce((sum, f) => sum + f.bytes, 0);
  if (o.yes) await changing(ctx, 'clean', async () => removeMovedAside(ctx, found));
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify({ removed: o.yes === true, dirs: found, bytes: total }, null, 2)}\n`,
    );
    return 0;
  }
  if (found.length === 0) {
    process.stdout.write('no old data directory to clean\n');
    return 0;
  }
  const lines = found.map((f) => `${o.yes ? 'removed' : '  '} ${f.dir} (${f.node}, ${formatBytes(f.bytes)})`);
  lines.push(
    o.yes
      ? `freed ${formatBytes(total)}`
      : `${formatBytes(total)} in ${found.length} old data director${found.length === 1 ? 'y' : 'ies'} that re-clones moved aside; \`pgrepl clean --yes\` removes ${found.length === 1 ? 'it' : 'them'}`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
