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
  readonly repoPath: string;
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
 * A node's pgbackrest.conf. No secret: pgBackRest reads the superuser's password from the libpq
 * passfile pgrepl names in PGPASSFILE when it runs a backup.
 */
export function renderPgbackrestConf(i: PgbackrestConfInput): string {
  const global: (readonly [string, string])[] = [
    ['repo1-path', i.repoPath],
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
