import { PgreplError } from '../../errors.js';
import { archiveGaps } from '../../backup/archive-continuity.js';
import type { ArchiveGap } from '../../backup/archive-continuity.js';
import type { BackupEntry, StanzaInfo } from '../../backup/backup-info.js';
import { instanceOptions } from '../../backup/render-pgbackrest-conf.js';
import { hostOf } from '../context/cluster-context.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { nodeOf, sqlOn } from '../context/node-sql.js';
import { decideBackupSource } from '../decide/decide-backup-source.js';
import { observeCluster } from '../observe/observe-cluster.js';
import { onlyPrimary } from '../observe/observation.js';
import { listArchive, pgbackrestOn, readStanza, requireBackup } from '../actions/backup-actions.js';

export type BackupType = 'full' | 'diff' | 'incr';

export interface BackupResult {
  readonly backup: BackupEntry;
  /** The primary that started and stopped it, and the replica its files came from (null: the primary). */
  readonly primary: string;
  readonly copiedFrom: string;
  readonly why: string;
  readonly durationMs: number;
}

/**
 * Takes a backup of the running cluster with pgBackRest: from the primary, or with fromReplica from
 * a streaming replica of this machine (pgBackRest's backup-standby: the primary only starts and
 * stops it). Retention expires older backups afterwards. `onProgress` hears the share copied, by tenths.
 */
export async function runBackup(
  ctx: ClusterContext,
  o: { readonly type: BackupType; readonly onProgress?: (percent: number) => void },
): Promise<BackupResult> {
  const backup = requireBackup(ctx);
  const began = ctx.clock.now();
  const source = decideBackupSource(await observeCluster(ctx), backup.fromReplica, ctx.localNodes);
  if (!source.ok) throw new PgreplError(source.code, `${source.reason}; no backup was taken`);
  const primary = nodeOf(ctx, source.primary);
  const standby = source.standby === null ? null : nodeOf(ctx, source.standby);
  const startedAt = ctx.clock.wallNow();
  await pgbackrestOn(ctx, primary, {
    command: 'backup',
    options: [
      `--type=${o.type}`,
      '--log-level-console=off',
      '--log-level-stderr=detail',
      ...(standby
        ? [
            '--backup-standby',
            ...instanceOptions(2, {
              dataDir: standby.dataDir,
              port: standby.port,
              socketDir: hostOf(ctx, standby).pgbackrest.socketDir,
              user: ctx.spec.superuser.name,
            }).map(([k, v]) => `--${k}=${v}`),
          ]
        : []),
    ],
    ...(o.onProgress ? { onPercent: o.onProgress } : {}),
    ...(ctx.abort ? { signal: ctx.abort } : {}),
  });
  // pgBackRest lists backups oldest first: this command's is the newest, and began after it did
  // (its start time is in whole seconds).
  const made = (await readStanza(ctx)).backups.at(-1);
  if (!made || made.startedAt * 1000 < startedAt - 1000)
    throw new PgreplError(
      'E_BACKUP_FAILED',
      'pgbackrest backup ended but the repository lists no new backup',
    );
  return {
    backup: made,
    primary: primary.name,
    copiedFrom: standby?.name ?? primary.name,
    why: source.reason,
    durationMs: ctx.clock.now() - began,
  };
}

/** What the primary's archiver says (pg_stat_archiver). */
export interface ArchiverState {
  readonly node: string;
  readonly lastArchivedWal: string | null;
  readonly lastArchivedAt: string | null;
  readonly failedCount: number;
  readonly lastFailedWal: string | null;
  readonly lastFailedAt: string | null;
  /** The segment the primary writes now: everything before it should be archived. */
  readonly currentWal: string | null;
}

/** The archiver fails now: its last failure came after its last success (a failure long mended is history). */
export function archiveFailing(a: ArchiverState | null): boolean {
  return (
    a !== null && a.lastFailedAt !== null && (a.lastArchivedAt === null || a.lastFailedAt > a.lastArchivedAt)
  );
}

export interface BackupListing {
  readonly stanza: StanzaInfo;
  /** WAL missing from the archive after the oldest backup began: restores cannot pass it. */
  readonly gaps: readonly ArchiveGap[];
  /** null when no primary of this machine answers. */
  readonly archiver: ArchiverState | null;
}

/** The repository's backups, the archive's continuity, and the primary's archiver. */
export async function listBackups(ctx: ClusterContext): Promise<BackupListing> {
  requireBackup(ctx);
  const stanza = await readStanza(ctx);
  const oldest = stanza.backups[0];
  const gaps =
    stanza.status === 'ok' && oldest && oldest.walStart !== ''
      ? archiveGaps(
          await listArchive(ctx),
          oldest.walStart,
          (ctx.spec.postgres.walSegmentSize ?? 16) * 1024 * 1024,
        )
      : [];
  return { stanza, gaps, archiver: await readArchiver(ctx) };
}

async function readArchiver(ctx: ClusterContext): Promise<ArchiverState | null> {
  const primary = onlyPrimary((await observeCluster(ctx)).nodes);
  if (!primary) return null;
  const rows = await sqlOn(ctx, primary.node, (s) =>
    s.query<{
      last_archived_wal: string | null;
      last_archived_time: string | null;
      failed_count: string;
      last_failed_wal: string | null;
      last_failed_time: string | null;
      current_wal: string | null;
    }>(
      `select last_archived_wal, last_archived_time::text, failed_count::text, last_failed_wal,
              last_failed_time::text, pg_walfile_name(pg_current_wal_lsn()) as current_wal
         from pg_stat_archiver`,
    ),
  );
  const r = rows[0];
  if (!r) return null;
  return {
    node: primary.node.name,
    lastArchivedWal: r.last_archived_wal,
    lastArchivedAt: r.last_archived_time,
    failedCount: Number(r.failed_count),
    lastFailedWal: r.last_failed_wal,
    lastFailedAt: r.last_failed_time,
    currentWal: r.current_wal,
  };
}
