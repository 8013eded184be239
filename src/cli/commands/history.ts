import { commandContext } from '../command-context.js';
import { haTarget } from '../../operator/ha-target.js';
import type { HistoryEntry } from '../../cluster/store/cluster-store.js';
import type { GlobalOptions } from '../command-context.js';

/** `history [--json]`: every promotion, switchover, rejoin and mode change, oldest first. */
export async function runHistory(g: GlobalOptions, o: { json?: boolean }): Promise<number> {
  const ctx = await commandContext(g);
  const t = haTarget(ctx.spec, ctx.processEnv);
  // With agents, what they did is in etcd; what commands did here, in the state dir.
  const fromAgents = t ? await t.store.readHistory<HistoryEntry>().catch(() => []) : [];
  const entries = [...(await ctx.store.readHistory()), ...fromAgents].sort((a, b) =>
    a.at.localeCompare(b.at),
  );
  if (o.json) {
    process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
    return 0;
  }
  if (entries.length === 0) {
    process.stdout.write(
      `cluster ${ctx.spec.cluster}: no promotion, switchover, rejoin or mode change yet\n`,
    );
    return 0;
  }
  for (const e of entries) {
    const what =
      e.op === 'rejoin'
        ? `${e.node} rejoined ${e.from}`
        : e.op === 'set-mode'
          ? `mode set`
          : `${e.node} became primary${e.from ? ` (was ${e.from})` : ''}`;
    const where = [
      e.timeline === null ? null : `timeline ${e.timeline}`,
      e.lsn === null ? null : `at ${e.lsn}`,
    ]
      .filter(Boolean)
      .join(' ');
    process.stdout.write(
      `${e.at}  ${e.op.padEnd(10)} ${what}${where ? `, ${where}` : ''}, ${(e.durationMs / 1000).toFixed(1)} s: ${e.reason}\n`,
    );
  }
  return 0;
}
