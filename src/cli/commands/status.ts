import { PgreplError } from '../../errors.js';
import { commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';
import { formatStatus } from '../format-status.js';
import { formatHaStatus } from '../../operator/ha-status.js';
import { readClusterStatus } from '../../operator/cluster-status.js';
import { outputClosed } from '../process-signals.js';
import { readStanza } from '../../cluster/actions/backup-actions.js';
import { readLogicalStatus } from '../../cluster/operations/read-logical-status.js';
import { formatLogicalStatus } from '../format-logical-status.js';
import { repoLabel } from '../../backup/render-pgbackrest-conf.js';
import type { ClusterContext } from '../../cluster/context/cluster-context.js';
import { readUpgradeRecord } from '../../cluster/operations/upgrade-record.js';
import type { UpgradeRecord } from '../../cluster/operations/upgrade-record.js';

export interface StatusOptions {
  json?: boolean;
  watch?: boolean;
  interval?: string;
}

/** Exit code of `status` when the cluster is not healthy (1 is reserved for errors). */
export const EXIT_UNHEALTHY = 3;

export async function runStatus(g: GlobalOptions, o: StatusOptions): Promise<number> {
  const seconds = Number(o.interval ?? '2');
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new PgreplError('E_USAGE', `--interval takes a number of seconds above 0, not "${o.interval}"`);
  const ctx = await commandContext(g);
  const once = async () => {
    const [{ status, ha, json }, backup] = await Promise.all([readClusterStatus(ctx), lastBackup(ctx)]);
    const logical = await readLogicalStatus(ctx, status.primary);
    const upgrade = readUpgradeRecord(ctx.spec.stateDir);
    const text = o.json
      ? JSON.stringify(
          {
            ...json,
            postgres: { version: ctx.env.bins.version, binDir: ctx.env.bins.binDir },
            ...(backup ? { backup } : {}),
            ...(logical ? { logical } : {}),
            ...(upgrade ? { upgrade } : {}),
          },
          null,
          2,
        )
      : `${formatStatus(status, ctx.env.bins)}${ha ? `\n${formatHaStatus(ha)}` : ''}${backup ? `\n${describeBackup(backup)}` : ''}${logical ? `\n${formatLogicalStatus(logical)}` : ''}${upgrade ? `\n${describeUpgrade(upgrade)}` : ''}`;
    // A subscription whose apply worker does not run copies nothing: as unhealthy as a stopped replica.
    const healthy =
      status.healthy && !logical?.subscriptions.some((x) => x.state === 'down' || x.slotMissing);
    return { healthy, text };
  };
  if (!o.watch) {
    const { healthy, text } = await once();
    process.stdout.write(`${text}\n`);
    return healthy ? 0 : EXIT_UNHEALTHY;
  }
  const intervalMs = Math.max(200, seconds * 1000);
  // Until interrupted, or until whoever reads the output stops reading (`| head`).
  while (!outputClosed()) {
    const { text } = await once();
    const clear = process.stdout.isTTY && !o.json ? '\x1b[2J\x1b[H' : '';
    process.stdout.write(`${clear}${new Date().toISOString()}\n${text}\n`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return 0;
}

/** With `backup:`, the repository's newest backup (`status --json`'s `backup`). */
interface BackupLine {
  readonly repository: string;
  /** null: the repository cannot be read now (why). */
  readonly error: string | null;
  readonly last: {
    readonly label: string;
    readonly type: string;
    readonly endedAt: string;
    readonly ageSeconds: number;
  } | null;
}

/** The newest backup in the repository; a repository that cannot be read is said, not thrown. */
async function lastBackup(ctx: ClusterContext): Promise<BackupLine | null> {
  if (ctx.spec.backup === undefined) return null;
  const repo = repoLabel(ctx.spec.backup.repo);
  try {
    const newest = (await readStanza(ctx)).backups.at(-1);
    return {
      repository: repo,
      error: null,
      last: newest
        ? {
            label: newest.label,
            type: newest.type,
            endedAt: new Date(newest.stoppedAt * 1000).toISOString(),
            ageSeconds: Math.round(ctx.clock.wallNow() / 1000 - newest.stoppedAt),
          }
        : null,
    };
  } catch (err) {
    return { repository: repo, error: (err as Error).message, last: null };
  }
}

function describeBackup(b: BackupLine): string {
  if (b.error !== null) return `backups: the repository ${b.repository} cannot be read: ${b.error}`;
  if (b.last === null) return `backups: none yet in ${b.repository}; \`pgrepl backup\` takes one`;
  const minutes = Math.round(b.last.ageSeconds / 60);
  return `backups: the last, ${b.last.label} (${b.last.type}), ended ${minutes < 1 ? 'less than a minute' : `${minutes} min`} ago; \`pgrepl backups\` lists them`;
}

/** The upgrade under way (or done) of this cluster, in one line: where it stands and what comes next. */
function describeUpgrade(u: UpgradeRecord): string {
  const next = {
    preparing: 'the new cluster is being made and filled',
    subscribed: 'caught up; `pgrepl upgrade --cutover` moves the writes, DDL refused here until then',
    'cut-over': `writes moved at ${u.cutoverAt ?? '?'} (refused for ${u.gapMs ?? '?'} ms); this cluster refuses writes and applies the new one's; \`pgrepl upgrade --finish\` or \`--rollback\``,
    finished: 'finished: this cluster is retired',
  }[u.phase];
  return `upgrade to ${u.cluster} (PostgreSQL ${u.version}, spec ${u.specFile}): ${u.phase}; ${next}`;
}
