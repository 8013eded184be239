import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PgreplError } from '../../errors.js';
import type { BackupEntry } from '../../backup/backup-info.js';
import {
  assertPortFree,
  logLength,
  logSince,
  logTail,
  startInstance,
} from '../../postgres/instance-control.js';
import { ensureOwnedDir } from '../../postgres/owned-paths.js';
import { withSql } from '../../postgres/sql-client.js';
import type { SqlSession, SqlTarget } from '../../postgres/sql-client.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { requireSuperuserPassword } from '../context/cluster-context.js';
import { pollOn, sqlOn } from '../context/node-sql.js';
import { decideRestore } from '../decide/decide-restore.js';
import type { RestoreTarget } from '../decide/decide-restore.js';
import { renderRestoredConfig } from '../decide/render-node-config.js';
import { observeCluster } from '../observe/observe-cluster.js';
import { onlyPrimary } from '../observe/observation.js';
import { writeNodeFiles } from '../actions/node-files.js';
import { readStanza, requireBackup, restoreInto, writeBackupFiles } from '../actions/backup-actions.js';
import { within } from '../../cluster-spec/data-dir-overlaps.js';
import { controlOf } from '../actions/control-of.js';
import { configFor } from '../actions/node-actions.js';
import { prepareStateDir } from '../context/cluster-context.js';
import { logFileOf } from '../observe/local-node-disk.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import { applyUp, planCluster } from './run-up.js';

export interface RestoreRequest {
  readonly target: RestoreTarget;
  /** An empty or missing directory, of no node. */
  readonly into: string;
  readonly port: number;
  readonly onProgress?: (message: string) => void;
}

export interface RestoreResult {
  readonly dataDir: string;
  readonly port: number;
  readonly pid: number;
  readonly backup: BackupEntry;
  /** Where recovery stopped, in PostgreSQL's words ("recovery stopping before commit of transaction ..."). */
  readonly stoppedAt: string | null;
  readonly timeline: number;
  readonly logFile: string;
  readonly durationMs: number;
}

/** How long a restored server may take to replay the archive up to its target. */
const RECOVERY_TIMEOUT_MS = 30 * 60_000;

/**
 * Restores the cluster as it was at `target` into a new directory, as a stand-alone server on
 * loopback beside the cluster (never over a node): pgBackRest copies the newest backup before the
 * target, PostgreSQL replays the archive up to it and is promoted there. The server keeps running
 * for the user to read from; it archives nothing.
 */
export async function runRestore(ctx: ClusterContext, r: RestoreRequest): Promise<RestoreResult> {
  requireBackup(ctx);
  const began = ctx.clock.now();
  const into = resolve(r.into);
  assertFreeTarget(ctx, into);
  await assertPortFree('127.0.0.1', r.port, 'the restored server');
  const decided = decideRestore(r.target, (await readStanza(ctx)).backups, ctx.clock.wallNow());
  if (!decided.ok) throw new PgreplError(decided.code, `${decided.reason}; nothing was restored`);
  const source = ctx.spec.nodes.find((n) => ctx.localNodes.has(n.name));
  if (!source) throw new PgreplError('E_NOT_LOCAL', 'no node of the cluster runs on this machine');
  await archiveUpToNow(ctx, r.onProgress);
  ensureOwnedDir(into, 0o700, ctx.env.runAs);
  r.onProgress?.(`restoring backup ${decided.backup.label} into ${into}`);
  try {
    await restoreInto(
      ctx,
      source,
      into,
      { options: [...decided.options, '--archive-mode=off'], sizeBytes: decided.backup.sizeBytes },
      (p) => {
        if (p.phase === 'copying') r.onProgress?.(`copied ${Math.round((100 * p.doneKb) / p.totalKb)}%`);
      },
    );
  } catch (err) {
    // What pgBackRest left is no server: the directory goes, so that the same command can run again.
    rmSync(into, { recursive: true, force: true });
    throw err;
  }
  writeNodeFiles(
    into,
    renderRestoredConfig(ctx.spec, { port: r.port, pgMajor: ctx.env.bins.major }),
    ctx.env.runAs,
  );
  rmSync(join(into, 'standby.signal'), { force: true });
  const logFile = join(ctx.paths.logsDir, `restored-${r.port}.log`);
  r.onProgress?.('replaying the archive up to the target');
  await startInstance(ctx.env, { dataDir: into, logFile }).catch((err: unknown) => {
    throw recoveryError(logFile, err);
  });
  const target: SqlTarget = {
    host: '127.0.0.1',
    port: r.port,
    user: ctx.spec.superuser.name,
    password: requireSuperuserPassword(ctx),
    label: 'restored server',
  };
  const timeline = await waitPromoted(ctx, target, logFile);
  const pid = Number(readFileSync(join(into, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return {
    dataDir: into,
    port: r.port,
    pid,
    backup: decided.backup,
    stoppedAt: recoveryStopLine(readFileSync(logFile, 'utf8')),
    timeline,
    logFile,
    durationMs: ctx.clock.now() - began,
  };
}

/** A restore goes into a new directory: never a node's, the state dir's or the repository's, nor one holding files. */
function assertFreeTarget(ctx: ClusterContext, into: string): void {
  const taken = [
    ...ctx.spec.nodes.map((n) => ({ dir: n.dataDir, what: `${n.name}'s data directory` })),
    { dir: ctx.spec.stateDir, what: 'the state directory' },
  ];
  const repo = requireBackup(ctx).repo;
  if (repo.kind === 'posix') taken.push({ dir: repo.path, what: 'the backup repository' });
  const clash = taken.find((t) => within(into, t.dir) || within(t.dir, into));
  if (clash)
    throw new PgreplError(
      'E_DATA_DIR_FOREIGN',
      `${into} overlaps ${clash.what}: a restore goes beside the cluster, into a new directory; nothing was restored`,
    );
  if (existsSync(into) && readdirSync(into).length > 0)
    throw new PgreplError(
      'E_OUTPUT_NOT_EMPTY',
      `${into} is not empty: restore into a new or empty directory; nothing was restored`,
    );
}

/**
 * Makes the archive reach the present: the running primary switches to a new WAL segment and pgrepl
 * waits until the finished one is archived. Without it the last commits before the target would
 * still sit in the primary's current segment, and recovery would end before the target.
 */
async function archiveUpToNow(ctx: ClusterContext, say: ((m: string) => void) | undefined): Promise<void> {
  const primary = onlyPrimary((await observeCluster(ctx)).nodes);
  if (!primary) {
    say?.('no primary runs: restoring from what the archive already holds');
    return;
  }
  const [row] = await sqlOn(ctx, primary.node, (s) =>
    s.query<{ wal: string }>('select pg_walfile_name(pg_switch_wal()) as wal'),
  );
  const segment = row?.wal;
  if (!segment) return;
  say?.(`waiting until ${primary.node.name} has archived ${segment}`);
  const state = await pollOn(
    ctx,
    primary.node,
    async (s) => {
      const [a] = await s.query<{ done: boolean; failed: string | null }>(
        `select coalesce(last_archived_wal >= $1, false) as done,
                case when last_failed_wal >= $1 then last_failed_wal end as failed
           from pg_stat_archiver`,
        [segment],
      );
      return a?.done ? 'archived' : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  if (state !== 'archived')
    throw new PgreplError(
      'E_ARCHIVE_FAILING',
      `${primary.node.name} did not archive ${segment} within 60 s: \`pgrepl backups\` shows the archiver's last failure, its server log says why; nothing was restored`,
    );
}

/** A restored server's timeline once its recovery reached the target and it was promoted; undefined before. */
async function promotedTimeline(s: SqlSession): Promise<number | undefined> {
  const [row] = await s.query<{ recovering: boolean; timeline: number }>(
    'select pg_is_in_recovery() as recovering, timeline_id as timeline from pg_control_checkpoint()',
  );
  return row && !row.recovering ? row.timeline : undefined;
}

/** Waits until the restored server has reached its target and was promoted; returns its timeline. */
async function waitPromoted(ctx: ClusterContext, target: SqlTarget, logFile: string): Promise<number> {
  const deadline = ctx.clock.now() + RECOVERY_TIMEOUT_MS;
  while (ctx.clock.now() < deadline) {
    const timeline = await withSql(target, promotedTimeline).catch(() => undefined);
    if (timeline !== undefined) return timeline;
    await ctx.clock.sleep(200, ctx.abort);
  }
  throw new PgreplError(
    'E_TIMEOUT',
    `the restored server did not reach its target within ${RECOVERY_TIMEOUT_MS / 60_000} minutes; it still runs, see ${logFile}`,
  );
}

/** The server's last words on where its recovery stopped, or null when it replayed to the end. */
function recoveryStopLine(log: string): string | null {
  const lines = log.split('\n').filter((l) => /recovery stopping (before|after)/.test(l));
  const last = lines.at(-1);
  return last ? last.replace(/^.*LOG:\s+/, '') : null;
}

/** A server that exited during recovery: a target beyond the archive's end is the usual cause. */
function recoveryError(logFile: string, cause: unknown): PgreplError {
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
  if (/recovery ended before configured recovery target was reached/.test(log))
    return new PgreplError(
      'E_RESTORE_TARGET',
      `the archive ends before the target: the WAL up to it was never archived (\`pgrepl backups\` shows the archive's end; --latest restores all there is); the restored directory is left for inspection, see ${logFile}\n${logTail(logFile)}`,
      { cause },
    );
  return cause instanceof PgreplError
    ? cause
    : new PgreplError('E_COMMAND_FAILED', `the restored server did not start: see ${logFile}`, { cause });
}

export interface ClusterRestoreResult {
  readonly primary: string;
  readonly backup: BackupEntry;
  readonly stoppedAt: string | null;
  readonly timeline: number;
  /** The replicas streaming from it once `up` cloned them. */
  readonly replicas: readonly string[];
  /** Data directories that were still there, moved aside rather than overwritten. */
  readonly movedAside: readonly string[];
  readonly durationMs: number;
}

/**
 * Rebuilds the whole cluster from the repository after a disaster: the spec's first node is
 * restored to `target` and promoted there, then `up` clones the others from it. Refuses while any
 * node runs; a data directory still there is moved aside, never overwritten. The state dir must
 * have survived (or the passwords come from env or files): the restored database has the
 * passwords it had.
 */
export async function runClusterRestore(
  ctx: ClusterContext,
  r: { readonly target: RestoreTarget; readonly onProgress?: (message: string) => void },
): Promise<ClusterRestoreResult> {
  requireBackup(ctx);
  const began = ctx.clock.now();
  const remote = ctx.spec.nodes.find((n) => !ctx.localNodes.has(n.name));
  if (remote)
    throw new PgreplError(
      'E_NOT_LOCAL',
      `${remote.name} runs on ${remote.host}: restore --cluster rebuilds clusters whose nodes are all on this machine; nothing was restored`,
    );
  const running = (await observeCluster(ctx)).nodes.filter((o) => o.server !== null);
  if (running.length > 0)
    throw new PgreplError(
      'E_DATA_DIR_IN_USE',
      `restore --cluster rebuilds every node, and ${running.map((o) => o.node.name).join(', ')} ${running.length === 1 ? 'runs' : 'run'}: ` +
        'stop the cluster first (`pgrepl down`), and mind that its data directories will be moved aside; nothing was restored',
    );
  const decided = decideRestore(r.target, (await readStanza(ctx)).backups, ctx.clock.wallNow());
  if (!decided.ok) throw new PgreplError(decided.code, `${decided.reason}; nothing was restored`);
  const primary = ctx.spec.nodes[0] as NodeSpec;
  const prepared = prepareStateDir(ctx, { roleHasPassword: false });
  writeBackupFiles(prepared);
  const movedAside = ctx.spec.nodes.flatMap((n) => {
    const aside = controlOf(prepared, n).moveAside();
    if (aside) r.onProgress?.(`${n.name}'s old data directory moved to ${aside}`);
    return aside ? [aside] : [];
  });
  r.onProgress?.(`restoring backup ${decided.backup.label} as ${primary.name}, the primary`);
  const control = controlOf(prepared, primary);
  await control.clone({
    conninfo: '',
    config: configFor(prepared, primary, undefined),
    fromRepository: { options: decided.options, sizeBytes: decided.backup.sizeBytes },
    onProgress: (progress) => prepared.events.emit({ event: 'clone-progress', node: primary.name, progress }),
  });
  r.onProgress?.('replaying the archive up to the target');
  const logFrom = logLength(logFileOf(prepared, primary));
  await control.start();
  const promoted = await pollOn(prepared, primary, promotedTimeline, {
    timeoutMs: RECOVERY_TIMEOUT_MS,
    intervalMs: 200,
  });
  if (promoted === undefined)
    throw new PgreplError(
      'E_TIMEOUT',
      `${primary.name} did not reach its target in time; it still runs, see its log`,
    );
  // Recovery targets stay in postgresql.auto.conf: in a later standby of this node they would stop
  // its replay at the same target.
  control.clearRecoveryTargets();
  const stoppedAt = recoveryStopLine(logSince(logFileOf(prepared, primary), logFrom));
  r.onProgress?.(`${primary.name} is the primary on timeline ${promoted}; cloning the others`);
  const up = await applyUp(prepared, await planCluster(prepared, { create: true }));
  return {
    primary: primary.name,
    backup: decided.backup,
    stoppedAt,
    timeline: promoted,
    replicas: up.replicas,
    movedAside,
    durationMs: ctx.clock.now() - began,
  };
}
