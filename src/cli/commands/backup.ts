import { PgreplError } from '../../errors.js';
import { formatBytes } from '../../cluster/decide/status-report.js';
import { parseRestoreTime } from '../../cluster/decide/decide-restore.js';
import type { RestoreTarget } from '../../cluster/decide/decide-restore.js';
import { archiveFailing, listBackups, runBackup } from '../../cluster/operations/run-backup.js';
import type { BackupType } from '../../cluster/operations/run-backup.js';
import { runClusterRestore, runRestore } from '../../cluster/operations/run-restore.js';
import { freePort } from '../../ha/free-port.js';
import { parseLsn } from '../../postgres/lsn.js';
import { changing, commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';
import { repoLabel } from '../../backup/render-pgbackrest-conf.js';

const out = (text: string) => process.stdout.write(text);
const when = (seconds: number) => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

/** `backup [--type full|diff|incr] [--json]`: one backup now, with its progress on stderr. */
export async function runBackupCommand(
  g: GlobalOptions,
  o: { type?: string; json?: boolean },
): Promise<number> {
  const type = (o.type ?? 'incr') as BackupType;
  if (!['full', 'diff', 'incr'].includes(type))
    throw new PgreplError('E_USAGE', `--type must be full, diff or incr, not "${o.type}"`);
  const ctx = await commandContext(g);
  const r = await runBackup(ctx, {
    type,
    onProgress: (percent) =>
      ctx.events.emit({ event: 'action', node: ctx.spec.cluster, message: `backup: ${percent}% copied` }),
  });
  if (o.json) {
    out(`${JSON.stringify({ cluster: ctx.spec.cluster, ...r }, null, 2)}\n`);
    return 0;
  }
  const b = r.backup;
  out(
    `backup ${b.label} (${b.type}) of cluster ${ctx.spec.cluster} in ${(r.durationMs / 1000).toFixed(1)} s: ` +
      `${formatBytes(b.sizeBytes)} of data, ${formatBytes(b.repoDeltaBytes)} added to the repository; ${r.why}\n` +
      `WAL ${b.walStart} .. ${b.walStop}; \`pgrepl backups\` lists every backup\n`,
  );
  return 0;
}

/** `backups [--json]`: the repository's backups, the archive's continuity, and the primary's archiver. */
export async function runBackupsCommand(g: GlobalOptions, o: { json?: boolean }): Promise<number> {
  const ctx = await commandContext(g);
  const l = await listBackups(ctx);
  if (o.json) {
    out(
      `${JSON.stringify({ cluster: ctx.spec.cluster, repository: ctx.spec.backup && repoLabel(ctx.spec.backup.repo), stanza: l.stanza.status, backups: l.stanza.backups, archive: l.stanza.archive, gaps: l.gaps, archiver: l.archiver }, null, 2)}\n`,
    );
    return l.stanza.status !== 'ok' || l.gaps.length > 0 || archiveFailing(l.archiver) ? 3 : 0;
  }
  let unhealthy = l.stanza.status !== 'ok';
  if (l.stanza.status === 'missing')
    out(
      `cluster ${ctx.spec.cluster}: no stanza in ${ctx.spec.backup && repoLabel(ctx.spec.backup.repo)} yet (${l.stanza.message}); run \`pgrepl up\`\n`,
    );
  else if (l.stanza.status === 'error')
    out(
      `warning: the repository ${ctx.spec.backup && repoLabel(ctx.spec.backup.repo)} cannot be read: ${l.stanza.message}\n`,
    );
  else if (l.stanza.backups.length === 0)
    out(`cluster ${ctx.spec.cluster}: no backup yet; \`pgrepl backup\` takes one\n`);
  for (const b of l.stanza.backups)
    out(
      `${b.label.padEnd(36)} ${b.type.padEnd(4)} ${when(b.stoppedAt)}  ${formatBytes(b.sizeBytes).padStart(9)} ` +
        `(+${formatBytes(b.repoDeltaBytes)} in the repository)  WAL ${b.walStart}..${b.walStop}${b.error ? '  PAGE CHECKSUM ERRORS' : ''}\n`,
    );
  for (const a of l.stanza.archive) out(`archive ${a.id}: ${a.min ?? '-'} .. ${a.max ?? '-'}\n`);
  for (const gap of l.gaps) {
    unhealthy = true;
    out(
      `warning: the archive lacks ${gap.segments} WAL segment(s) from ${gap.fromLsn} to ${gap.toLsn}: a restore cannot replay past ${gap.fromLsn}; ` +
        'take a full backup now (`pgrepl backup --type full`) so that later restores do not need it\n',
    );
  }
  const a = l.archiver;
  if (a) {
    out(
      `archiver on ${a.node}: last archived ${a.lastArchivedWal ?? 'nothing yet'}${a.lastArchivedAt ? ` at ${a.lastArchivedAt}` : ''}, writing ${a.currentWal}\n`,
    );
    if (archiveFailing(a)) {
      unhealthy = true;
      out(
        `warning: archiving ${a.lastFailedWal} is failing (${a.failedCount} failure(s), last at ${a.lastFailedAt}): ` +
          `WAL piles up on ${a.node} until it works; ${a.node}'s server log and pgBackRest's log under ${ctx.spec.stateDir}/backup/log say why\n`,
      );
    }
  }
  return unhealthy ? 3 : 0;
}

/** `restore --to TIME | --lsn LSN | --latest --into DIR [--port P] [--json]`. */
export async function runRestoreCommand(
  g: GlobalOptions,
  o: {
    to?: string;
    lsn?: string;
    latest?: boolean;
    into?: string;
    port?: string;
    cluster?: boolean;
    json?: boolean;
  },
): Promise<number> {
  if (o.cluster) return runClusterRestoreCommand(g, o);
  if (o.into === undefined)
    throw new PgreplError(
      'E_USAGE',
      'give --into DIR (a copy beside the cluster) or --cluster (rebuild the cluster)',
    );
  const into = o.into;
  const target = restoreTarget(o);
  const port = o.port === undefined ? await freePort() : Number(o.port);
  if (!Number.isInteger(port) || port < 1024 || port > 65535)
    throw new PgreplError('E_USAGE', `--port must be a port from 1024 to 65535, not "${o.port}"`);
  const ctx = await commandContext(g);
  const r = await runRestore(ctx, {
    target,
    into,
    port,
    onProgress: (message) => ctx.events.emit({ event: 'action', node: 'restore', message }),
  });
  if (o.json) {
    out(`${JSON.stringify({ cluster: ctx.spec.cluster, target, ...r }, null, 2)}\n`);
    return 0;
  }
  out(
    `restored ${ctx.spec.cluster} from backup ${r.backup.label} into ${r.dataDir} in ${(r.durationMs / 1000).toFixed(1)} s` +
      `${r.stoppedAt ? ` (${r.stoppedAt})` : ', up to the end of the archive'}; timeline ${r.timeline}\n` +
      `it runs on 127.0.0.1:${r.port} (PID ${r.pid}), writable, archiving nothing; log: ${r.logFile}\n` +
      `read from it: psql "host=127.0.0.1 port=${r.port} user=${ctx.spec.superuser.name} dbname=postgres" (the superuser's password as of the backup)\n` +
      `stop it when done: kill -INT ${r.pid}; then delete ${r.dataDir}\n`,
  );
  return 0;
}

/** `restore --cluster [--to TIME | --lsn LSN]`: the whole cluster rebuilt from the repository (default: its latest). */
async function runClusterRestoreCommand(
  g: GlobalOptions,
  o: { to?: string; lsn?: string; latest?: boolean; into?: string; port?: string; json?: boolean },
): Promise<number> {
  if (o.into !== undefined || o.port !== undefined)
    throw new PgreplError(
      'E_USAGE',
      '--cluster rebuilds the nodes in their own directories: no --into or --port',
    );
  const target = o.to === undefined && o.lsn === undefined ? ({ kind: 'latest' } as const) : restoreTarget(o);
  const ctx = await commandContext(g);
  const r = await changing(ctx, 'restore', () =>
    runClusterRestore(ctx, {
      target,
      onProgress: (message) => ctx.events.emit({ event: 'action', node: 'restore', message }),
    }),
  );
  if (o.json) {
    out(`${JSON.stringify({ cluster: ctx.spec.cluster, target, ...r }, null, 2)}\n`);
    return 0;
  }
  out(
    `cluster ${ctx.spec.cluster} rebuilt from backup ${r.backup.label} in ${(r.durationMs / 1000).toFixed(1)} s` +
      `${r.stoppedAt ? ` (${r.stoppedAt})` : ', up to the end of the archive'}: ${r.primary} primary on timeline ${r.timeline}` +
      `${r.replicas.length > 0 ? `, ${r.replicas.join(', ')} streaming` : ''}\n` +
      r.movedAside
        .map((d) => `kept ${d}: what was there before; \`pgrepl clean --yes\` removes it\n`)
        .join(''),
  );
  return 0;
}

function restoreTarget(o: { to?: string; lsn?: string; latest?: boolean }): RestoreTarget {
  const given = [o.to !== undefined, o.lsn !== undefined, o.latest === true].filter(Boolean).length;
  if (given !== 1) throw new PgreplError('E_USAGE', 'give exactly one of --to TIME, --lsn LSN or --latest');
  if (o.latest) return { kind: 'latest' };
  if (o.lsn !== undefined) {
    try {
      parseLsn(o.lsn);
    } catch {
      throw new PgreplError('E_USAGE', `--lsn takes a WAL position like 0/3000148, not "${o.lsn}"`);
    }
    return { kind: 'lsn', lsn: o.lsn.toUpperCase() };
  }
  const time = parseRestoreTime(o.to as string);
  if (!time)
    throw new PgreplError(
      'E_USAGE',
      `--to takes a time with its zone, like "2026-12-07 13:44:18+00" or 2026-12-07T13:44:18.873Z, not "${o.to}"`,
    );
  return { kind: 'time', ...time };
}
