import type { BackupRepo } from '../cluster-spec/cluster-spec.js';

/** One PostgreSQL instance as pgBackRest reaches it: its data directory, and its socket. */
export interface PgbackrestInstance {
  readonly dataDir: string;
  readonly port: number;
  readonly socketDir: string;
  /** The role pgBackRest connects as (the superuser; its password comes from PGPASSFILE). */
  readonly user: string;
}

export interface PgbackrestConfInput {
  /** The stanza: the cluster's name. */
  readonly stanza: string;
  /** Which node the file is for, named in its header. */
  readonly node: string;
  readonly repo: BackupRepo;
  readonly retentionFull: number;
  readonly retentionDiff: number | undefined;
  readonly logDir: string;
  readonly lockDir: string;
  /** The node itself, as pg1: archive-push and archive-get find its WAL and pg_control there. */
  readonly instance: PgbackrestInstance;
}

/** Options of an instance at pgBackRest's index `i` (pg1, pg2, ...), as `name=value` pairs. */
export function instanceOptions(i: number, p: PgbackrestInstance): [string, string][] {
  return [
    [`pg${i}-path`, p.dataDir],
    [`pg${i}-port`, String(p.port)],
    [`pg${i}-socket-path`, p.socketDir],
    [`pg${i}-user`, p.user],
  ];
}

/**
 * Where the repository is, as pgBackRest's repo1 options; an S3 repository's keys are not among
 * them (see renderS3Credentials).
 */
export function repoOptions(repo: BackupRepo): [string, string][] {
  if (repo.kind === 'posix') return [['repo1-path', repo.path]];
  return [
    ['repo1-type', 's3'],
    ['repo1-path', repo.path],
    ['repo1-s3-bucket', repo.bucket],
    ['repo1-s3-endpoint', repo.endpoint],
    ['repo1-s3-region', repo.region],
    ['repo1-s3-uri-style', repo.uriStyle],
    ...(repo.port === undefined ? [] : ([['repo1-storage-port', String(repo.port)]] as [string, string][])),
    ...(repo.caFile === undefined ? [] : ([['repo1-storage-ca-file', repo.caFile]] as [string, string][])),
  ];
}

/** The repository as a user reads it: a directory, or s3://bucket/path at the endpoint. */
export function repoLabel(repo: BackupRepo): string {
  return repo.kind === 'posix' ? repo.path : `s3://${repo.bucket}${repo.path} (${repo.endpoint})`;
}

/** An S3 key pair as pgBackRest environment options: for the commands pgrepl runs itself. */
export function s3CredentialEnv(key: string, secret: string): Record<string, string> {
  return { PGBACKREST_REPO1_S3_KEY: key, PGBACKREST_REPO1_S3_KEY_SECRET: secret };
}

/**
 * The include file (mode 0600, the PostgreSQL OS user's) with an S3 repository's keys: the
 * archive_command and restore_command PostgreSQL runs have no other way to them, and the node's
 * pgbackrest.conf, which `render` may show, stays free of secrets.
 */
export function renderS3Credentials(key: string, secret: string): string {
  return [
    '# Written by pgrepl up from backup.repo.s3 key: and secret:; mode 0600.',
    '[global]',
    `repo1-s3-key=${key}`,
    `repo1-s3-key-secret=${secret}`,
    '',
  ].join('\n');
}

/**
 * A node's pgbackrest.conf. No secret: pgBackRest reads the superuser's password from the libpq
 * passfile pgrepl names in PGPASSFILE when it runs a backup.
 */
export function renderPgbackrestConf(i: PgbackrestConfInput): string {
  const global: (readonly [string, string])[] = [
    ...repoOptions(i.repo),
    ['repo1-retention-full', String(i.retentionFull)],
    ...(i.retentionDiff === undefined ? [] : ([['repo1-retention-diff', String(i.retentionDiff)]] as const)),
    ['log-path', i.logDir],
    ['lock-path', i.lockDir],
    ['spool-path', i.lockDir],
    ['log-level-console', 'warn'],
    ['log-level-file', 'info'],
    // A backup starts at once (an immediate checkpoint), not at the primary's next scheduled one.
    ['start-fast', 'y'],
    ['compress-type', 'lz4'],
  ];
  const lines = (pairs: readonly (readonly [string, string])[]) => pairs.map(([k, v]) => `${k}=${v}`);
  return [
    `# Managed by pgrepl for node ${i.node} of cluster ${i.stanza}; changes here are overwritten.`,
    '# Change backup: in pgrepl.yaml and run `pgrepl up`.',
    '[global]',
    ...lines(global),
    '',
    `[${i.stanza}]`,
    ...lines(instanceOptions(1, i.instance)),
    '',
  ].join('\n');
}
