import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PgreplError } from '../../errors.js';
import { parseStanzaInfo } from '../../backup/backup-info.js';
import type { StanzaInfo } from '../../backup/backup-info.js';
import {
  renderPgbackrestConf,
  renderS3Credentials,
  repoLabel,
  repoOptions,
  s3CredentialEnv,
} from '../../backup/render-pgbackrest-conf.js';
import { runPgbackrest } from '../../backup/run-pgbackrest.js';
import type { PgbackrestEnv, PgbackrestRun } from '../../backup/run-pgbackrest.js';
import { ensureOwnedDir, writeOwnedFile } from '../../postgres/owned-paths.js';
import { readSystemIdentifier } from '../../postgres/read-controldata.js';
import type { BackupRepo, BackupSpec, NodeSpec, S3Repo, SecretRef } from '../../cluster-spec/cluster-spec.js';
import { resolveSecret } from '../context/resolve-secret.js';
import type { CloneProgress } from '../../postgres/run-basebackup.js';
import { hostOf } from '../context/cluster-context.js';
import { sqlOn } from '../context/node-sql.js';
import { decideStanza } from '../decide/decide-stanza.js';
import { backupStateDir, confFilesOf } from '../../cluster-spec/backup-paths.js';
import type { ClusterContext } from '../context/cluster-context.js';

/** The spec's backup section, or the error a backup command gives without one. */
export function requireBackup(ctx: ClusterContext): BackupSpec {
  if (ctx.spec.backup) return ctx.spec.backup;
  throw new PgreplError(
    'E_BACKUP_NOT_CONFIGURED',
    `${ctx.spec.source} has no backup: section; add one (\`pgrepl init\` writes it commented) and run \`pgrepl up\``,
  );
}

/**
 * pgBackRest as the PostgreSQL OS user, reading the superuser's password from the state dir's
 * passfile and an S3 repository's keys from its environment (read from their sources now).
 */
export function pgbackrestEnvOf(ctx: ClusterContext): PgbackrestEnv {
  const repo = ctx.spec.backup?.repo;
  return {
    runner: ctx.env.runner,
    runAs: ctx.env.runAs,
    passfile: ctx.paths.superuserPassfile,
    credentials: repo?.kind === 's3' ? s3CredentialEnv(...s3Keys(ctx, repo)) : {},
  };
}

/** An S3 repository's access key and secret, from where the spec says; a line break in either is refused. */
function s3Keys(ctx: ClusterContext, repo: S3Repo): [string, string] {
  const read = (ref: SecretRef, noun: string) => {
    const what = 'backup.repo.s3';
    const value = resolveSecret(ref, what, {
      env: ctx.processEnv,
      create: false,
      runAs: ctx.env.runAs,
      noun,
    }) as string;
    if (/[\r\n]/.test(value))
      throw new PgreplError('E_SECRET', `the ${what} ${noun} holds a line break; it must be one line`);
    return value;
  };
  return [read(repo.key, 'key'), read(repo.secret, 'secret')];
}

/** The repository's options on pgBackRest's command line, for the commands run before (or without) a node's conf. */
const repoArgs = (repo: BackupRepo) => repoOptions(repo).map(([k, v]) => `--${k}=${v}`);

/** Runs a pgBackRest command with `node`'s pgbackrest.conf (the node as pg1). */
export function pgbackrestOn(
  ctx: ClusterContext,
  node: NodeSpec,
  run: Omit<PgbackrestRun, 'conf' | 'stanza'>,
): Promise<string> {
  if (!ctx.localNodes.has(node.name))
    throw new PgreplError(
      'E_NOT_LOCAL',
      `${node.name} runs on ${node.host}, not on this machine: run pgrepl there (pgBackRest reaches PostgreSQL through its local socket)`,
    );
  return runPgbackrest(pgbackrestEnvOf(ctx), {
    conf: confFilesOf(hostOf(ctx, node).pgbackrest, requireBackup(ctx).repo),
    stanza: ctx.spec.cluster,
    ...run,
  });
}

/**
 * Refuses a repository pgrepl should not create or cannot reach, before anything changes. A
 * directory's parent must exist (a path on a backup disk that is not mounted is a typo or an
 * outage, not a place to start a repository), and the path, if it exists, must be a directory. A
 * bucket must answer a listing with the spec's keys.
 */
export async function checkRepository(ctx: ClusterContext): Promise<void> {
  const repo = requireBackup(ctx).repo;
  if (repo.kind === 's3') {
    await runPgbackrest(pgbackrestEnvOf(ctx), {
      conf: null,
      stanza: ctx.spec.cluster,
      command: 'repo-ls',
      // pgBackRest retries a connection for about four io-timeouts: an endpoint that does not
      // answer fails in ~12 s, not after its default of minutes; one listing needs no more.
      options: [...repoArgs(repo), '--log-level-file=off', '--io-timeout=3'],
    }).catch((cause: unknown) => {
      throw new PgreplError(
        'E_BACKUP_REPO',
        `the backup repository ${repoLabel(repo)} cannot be reached: ${(cause as Error).message.split('\n')[0]}; check backup.repo.s3 (endpoint, bucket, region, keys, caFile); nothing was changed`,
        { cause },
      );
    });
    return;
  }
  const parent = dirname(repo.path);
  const problem = !repo.given
    ? null
    : !existsSync(parent)
      ? `its parent directory ${parent} does not exist (a backup disk not mounted?)`
      : existsSync(repo.path) && !statSync(repo.path).isDirectory()
        ? 'it is not a directory'
        : null;
  if (problem)
    throw new PgreplError(
      'E_BACKUP_REPO',
      `the backup repository ${repo.path} cannot be used: ${problem}; fix backup.repo.path; nothing was changed`,
    );
}

/**
 * Writes every local node's pgbackrest.conf and makes the directories pgBackRest and the sockets
 * need, owned by the PostgreSQL OS user (0700: the socket directory admits that user alone).
 * Unchanged files are left alone. Run by `up` after its checks passed.
 */
export function writeBackupFiles(ctx: ClusterContext): void {
  const backup = ctx.spec.backup;
  if (!backup) return;
  const runAs = ctx.env.runAs;
  // Made first, so that the directories under it are not left to mkdir's root-owned parents.
  ensureOwnedDir(backupStateDir(ctx.spec.stateDir), 0o700, runAs);
  const repo = backup.repo;
  if (repo.kind === 'posix') ensureOwnedDir(repo.path, 0o750, runAs);
  const credentials = repo.kind === 's3' ? renderS3Credentials(...s3Keys(ctx, repo)) : null;
  // The nodes of one machine share the include file: written once.
  const secretDirs = new Set<string>();
  for (const node of ctx.spec.nodes.filter((n) => ctx.localNodes.has(n.name))) {
    const paths = hostOf(ctx, node).pgbackrest;
    for (const dir of [dirname(paths.confFile), paths.socketDir, paths.logDir, paths.lockDir])
      ensureOwnedDir(dir, 0o700, runAs);
    if (credentials !== null && !secretDirs.has(paths.secretDir)) {
      secretDirs.add(paths.secretDir);
      ensureOwnedDir(paths.secretDir, 0o700, runAs);
      writeOwnedFile(join(paths.secretDir, 's3.conf'), credentials, 0o600, runAs);
    }
    writeOwnedFile(
      paths.confFile,
      renderPgbackrestConf({
        stanza: ctx.spec.cluster,
        node: node.name,
        repo,
        retentionFull: backup.retentionFull,
        retentionDiff: backup.retentionDiff,
        logDir: paths.logDir,
        lockDir: paths.lockDir,
        instance: {
          dataDir: node.dataDir,
          port: node.port,
          socketDir: paths.socketDir,
          user: ctx.spec.superuser.name,
        },
      }),
      0o600,
      runAs,
    );
  }
}

/** The cluster's stanza as the repository has it (read without any node's conf: before `up` wrote them). */
export async function readStanza(ctx: ClusterContext): Promise<StanzaInfo> {
  const backup = requireBackup(ctx);
  const json = await runPgbackrest(pgbackrestEnvOf(ctx), {
    conf: null,
    stanza: ctx.spec.cluster,
    command: 'info',
    options: [...repoArgs(backup.repo), '--log-level-file=off', '--output=json'],
  });
  return parseStanzaInfo(json, ctx.spec.cluster);
}

/** Every file of the stanza's WAL archive, as paths relative to it (`15-1/0000000100000000/<segment>-<sha1>.lz4`). */
export async function listArchive(ctx: ClusterContext): Promise<string[]> {
  const backup = requireBackup(ctx);
  const json = await runPgbackrest(pgbackrestEnvOf(ctx), {
    conf: null,
    stanza: ctx.spec.cluster,
    command: 'repo-ls',
    options: [...repoArgs(backup.repo), '--log-level-file=off', '--recurse', '--output=json'],
    params: [`archive/${ctx.spec.cluster}`],
  });
  const entries = JSON.parse(json) as Record<string, { type: string }>;
  return Object.entries(entries)
    .filter(([, e]) => e.type === 'file')
    .map(([path]) => path);
}

/** The cluster's database system identifier, from the first data directory of this machine that has one. */
export function clusterSystemId(ctx: ClusterContext): string | null {
  for (const node of ctx.spec.nodes.filter((n) => ctx.localNodes.has(n.name))) {
    const id = readSystemIdentifier(node.dataDir);
    if (id !== null) return id;
  }
  return null;
}

/** A restore from the repository: pgBackRest's options (type, target, set) and the backup's size, for progress. */
export interface RepositoryRestore {
  readonly options: readonly string[];
  readonly sizeBytes: number;
}

/**
 * The restore that makes a standby of the repository's newest backup (pgBackRest's --type=standby):
 * it replays the archive, then streams from its upstream through its slot.
 */
export async function standbyRestore(ctx: ClusterContext, node: NodeSpec): Promise<RepositoryRestore> {
  const newest = (await readStanza(ctx)).backups.filter((b) => !b.error).at(-1);
  if (!newest)
    throw new PgreplError(
      'E_NO_BACKUP',
      `${node.name} cannot be cloned from the repository: it holds no backup yet (\`pgrepl backup\`)`,
    );
  return { options: ['--type=standby', `--set=${newest.label}`], sizeBytes: newest.sizeBytes };
}

/** Restores a backup into `targetDir` with `node`'s pgbackrest.conf; the caller writes the node's files over it. */
export async function restoreInto(
  ctx: ClusterContext,
  node: NodeSpec,
  targetDir: string,
  r: RepositoryRestore,
  onProgress: ((p: CloneProgress) => void) | undefined,
): Promise<void> {
  const totalKb = r.sizeBytes / 1024;
  onProgress?.({ phase: 'copying', doneKb: 0, totalKb });
  await pgbackrestOn(ctx, node, {
    command: 'restore',
    options: [
      `--pg1-path=${targetDir}`,
      ...r.options,
      '--log-level-console=off',
      '--log-level-stderr=detail',
    ],
    onPercent: (percent) => onProgress?.({ phase: 'copying', doneKb: (totalKb * percent) / 100, totalKb }),
    ...(ctx.abort ? { signal: ctx.abort } : {}),
  });
  onProgress?.({ phase: 'done', doneKb: totalKb, totalKb });
}

/**
 * With agents running the cluster (`up` leaves the nodes to them): the backup files, and the stanza
 * if the repository has none, made from the running primary and checked. A primary that has not
 * restarted since `backup:` was added neither archives nor listens on pgBackRest's socket yet: the
 * answer says to restart, then run `up` again.
 */
export async function ensureBackupWithAgents(
  ctx: ClusterContext,
  primary: NodeSpec | null,
): Promise<string | null> {
  const backup = ctx.spec.backup;
  if (!backup) return null;
  await checkRepository(ctx);
  const decided = decideStanza(ctx.spec.cluster, await readStanza(ctx), clusterSystemId(ctx));
  if (decided.kind === 'refuse')
    throw new PgreplError(decided.code, `${decided.reason}; nothing was changed`);
  writeBackupFiles(ctx);
  if (decided.kind === 'ok') return null;
  if (primary === null) return 'no primary runs: the next `pgrepl up` makes the stanza';
  const [row] = await sqlOn(ctx, primary, (s) =>
    s.query<{ mode: string }>("select current_setting('archive_mode') as mode"),
  );
  if (row?.mode !== 'on')
    return `${primary.name} archives once it restarts with backup: (\`pgrepl restart\`); then run \`pgrepl up\` again, which makes the stanza`;
  await createStanza(ctx, primary);
  return `the stanza is made from ${primary.name}, and its WAL reaches the repository`;
}

/**
 * Creates the stanza from the running primary, then has pgBackRest check the whole chain: it
 * switches the primary to a new WAL segment and waits until that segment is in the repository.
 */
export async function createStanza(ctx: ClusterContext, primary: NodeSpec): Promise<void> {
  await pgbackrestOn(ctx, primary, { command: 'stanza-create' });
  await pgbackrestOn(ctx, primary, { command: 'check', options: ['--archive-timeout=30'] });
}

/**
 * Deletes this cluster's stanza from an S3 repository (`destroy --with-backups`; the nodes are
 * stopped by then): pgBackRest refuses until its stop file says no command will start for the
 * stanza. Returns what went, as the user reads it.
 */
export async function deleteBucketStanza(ctx: ClusterContext): Promise<string> {
  const node = ctx.spec.nodes.find(
    (n) => ctx.localNodes.has(n.name) && existsSync(hostOf(ctx, n).pgbackrest.confFile),
  );
  if (!node)
    throw new PgreplError(
      'E_BACKUP_FAILED',
      `no node of this machine has its pgbackrest.conf: the stanza ${ctx.spec.cluster} in ${repoLabel(requireBackup(ctx).repo)} was not deleted (\`pgbackrest stanza-delete\` deletes it)`,
    );
  await pgbackrestOn(ctx, node, { command: 'stop' });
  await pgbackrestOn(ctx, node, { command: 'stanza-delete', options: ['--force'] });
  return `${repoLabel(requireBackup(ctx).repo)}: stanza ${ctx.spec.cluster}`;
}
