import { chownSync, copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PgreplError } from '../errors.js';
import type { RunAs } from './command-runner.js';
import type { SqlSession } from './sql-client.js';

/**
 * What pg_basebackup leaves out of a copy (its excludeDirContents and excludeFiles): runtime state
 * the copy must not start with. The directories stay, empty.
 */
const EMPTIED_DIRS = new Set([
  'pg_wal',
  'pg_dynshmem',
  'pg_notify',
  'pg_replslot',
  'pg_serial',
  'pg_snapshots',
  'pg_stat_tmp',
  'pg_subtrans',
]);
const SKIPPED_FILES = new Set([
  'postmaster.pid',
  'postmaster.opts',
  'pg_internal.init',
  'backup_label',
  'backup_label.old',
  'tablespace_map',
  'standby.signal',
  'recovery.signal',
]);

/**
 * A replica's data directory without pg_basebackup, for an installation that lacks it (a bare
 * server package): PostgreSQL's low-level backup API on the upstream (pg_backup_start and
 * pg_backup_stop on one session, `upstream`), a file copy of its data directory on this machine in
 * between, the backup_label pg_backup_stop returns, and standby.signal. The WAL the copy needs from
 * the backup's start on comes by streaming, through the replica's slot (made before, so it holds
 * that WAL). Files that vanish while they are copied (a temporary file) are left out, as
 * pg_basebackup does; the WAL replayed from the label's checkpoint repairs what changed meanwhile.
 */
export async function copyDataDirectory(o: {
  readonly upstream: SqlSession;
  readonly sourceDir: string;
  readonly targetDir: string;
  readonly label: string;
  readonly runAs: RunAs | undefined;
}): Promise<{ readonly stopLsn: string }> {
  await o.upstream.query('SELECT pg_backup_start($1, true)', [o.label]);
  let stopped = false;
  try {
    const own = (path: string) => {
      if (o.runAs) chownSync(path, o.runAs.uid, o.runAs.gid);
    };
    copyTree(o.sourceDir, o.targetDir, o.sourceDir, own);
    const [stop] = await o.upstream.query<{ lsn: string; labelfile: string; spcmapfile: string | null }>(
      'SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(false)',
    );
    stopped = true;
    if (!stop) throw new Error('pg_backup_stop returned no row');
    for (const [name, text] of [
      ['backup_label', stop.labelfile],
      ['standby.signal', ''],
    ] as const) {
      writeFileSync(join(o.targetDir, name), text, { mode: 0o600 });
      own(join(o.targetDir, name));
    }
    return { stopLsn: stop.lsn };
  } finally {
    // A failed copy ends the backup too: the upstream keeps no backup in progress.
    if (!stopped) await o.upstream.query('SELECT pg_backup_stop(false)').catch(() => undefined);
  }
}

/** Copies `from` into `to`, leaving out what EMPTIED_DIRS and SKIPPED_FILES say; `own` each entry made. */
function copyTree(from: string, to: string, root: string, own: (path: string) => void): void {
  mkdirSync(to, { recursive: true, mode: 0o700 });
  own(to);
  const rel = relative(root, from);
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, e.name);
    const target = join(to, e.name);
    if (e.isSymbolicLink())
      throw new PgreplError(
        'E_NO_PG_BINARIES',
        `${source} is a symbolic link (a tablespace, or pg_wal elsewhere): copying a data directory without pg_basebackup does not follow them; install the version's pg_basebackup`,
      );
    if (e.isDirectory()) {
      if (rel === '' && EMPTIED_DIRS.has(e.name)) {
        mkdirSync(target, { mode: 0o700 });
        own(target);
        if (e.name === 'pg_wal') {
          mkdirSync(join(target, 'archive_status'), { mode: 0o700 });
          own(join(target, 'archive_status'));
        }
        continue;
      }
      if (e.name.startsWith('pgsql_tmp')) continue;
      copyTree(source, target, root, own);
    } else if (e.isFile() && !SKIPPED_FILES.has(e.name)) {
      try {
        copyFileSync(source, target);
        own(target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }
}
