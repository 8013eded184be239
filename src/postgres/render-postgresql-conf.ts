/** Where a replica streams from; absent for a primary. */
export interface UpstreamConf {
  host: string;
  port: number;
  user: string;
  passfile: string;
  slot: string;
  /** The CA the upstream's certificate is checked against (sslmode=verify-full); undefined: no TLS. */
  sslRootCert: string | undefined;
  /** A database to name (PostgreSQL 17's slot synchronization connects to one); streaming ignores it. */
  dbname?: string | undefined;
}

export interface PostgresqlConfInput {
  cluster: string;
  node: string;
  host: string;
  port: number;
  /** Enough WAL senders and slots for every other node plus a base backup. */
  nodeCount: number;
  settings: Readonly<Record<string, string>>;
  upstream: UpstreamConf | undefined;
  /** Major version of the server binaries, for settings older servers do not know. */
  pgMajor: number;
  /** Value of synchronous_standby_names; '' for asynchronous replication. */
  synchronousStandbyNames: string;
  /** The cluster's WAL segment size in MB (initdb's, 16 by default). */
  walSegmentSize: number;
  /** The server's certificate and key; undefined: no TLS. */
  tls: { cert: string; key: string } | undefined;
  /** Where the node archives its WAL while it is primary; undefined: no archive. */
  archive: ArchiveConf | undefined;
}

/** WAL archiving through pgBackRest. */
export interface ArchiveConf {
  /** The shell command PostgreSQL runs for each finished WAL segment (%p: its path). */
  readonly command: string;
  /** The shell command that fetches segment %f from the archive into %p. */
  readonly restoreCommand: string;
  /** The unix socket directory pgBackRest connects through (the only socket the server opens). */
  readonly socketDir: string;
}

/** pgrepl's defaults; the spec's `settings:` override them (except the reserved ones). */
export function defaultSettings(
  nodeCount: number,
  pgMajor: number,
  walSegmentSize = 16,
): Record<string, string> {
  // Generous and stable: max_wal_senders needs a restart to change, so adding a node must not move it.
  const senders = String(Math.max(20, nodeCount * 2 + 2));
  return {
    wal_level: 'replica',
    max_wal_senders: senders,
    max_replication_slots: senders,
    // Every node streams through its own slot, made before it needs one (on a candidate, before its
    // promotion), so extra kept WAL protects nothing, and it slows every rejoin: pg_rewind
    // (PostgreSQL 15) copies each WAL file the new primary holds, 256 MB of them took ~2.6 s here.
    wal_keep_size: '0',
    max_slot_wal_keep_size: '2GB',
    hot_standby_feedback: 'on',
    // A replica whose upstream went away retries every second, not every 5 s (PostgreSQL's default).
    wal_retrieve_retry_interval: '1s',
    shared_buffers: '128MB',
    max_connections: '100',
    log_line_prefix: '%m [%p] %q%u@%d ',
    log_connections: 'off',
    // Starting after a clone or rewind syncs the whole data dir first; one syncfs() per file system
    // instead of an fsync() per file makes that seconds faster on a large database (PostgreSQL 14+).
    ...(pgMajor >= 14 ? { recovery_init_sync_method: 'syncfs' } : {}),
    // PostgreSQL does not start with min_wal_size or max_wal_size under two segments; their
    // defaults (80 MB, 1 GB) are, from segments of 64 MB and of 1 GB on.
    ...(walSegmentSize * 2 > 80 ? { min_wal_size: `${walSegmentSize * 2}MB` } : {}),
    ...(walSegmentSize * 2 > 1024 ? { max_wal_size: `${walSegmentSize * 4}MB` } : {}),
  };
}

/** Settings pgrepl sets from the spec itself, so every node gets its own values. */
export function identitySettings(i: PostgresqlConfInput): Record<string, string> {
  const own: Record<string, string> = {
    listen_addresses: i.host,
    port: String(i.port),
    unix_socket_directories: '',
    cluster_name: i.node,
    password_encryption: 'scram-sha-256',
    hot_standby: 'on',
    // Rendered on replicas too: it only matters on a primary, and any node may become one.
    synchronous_standby_names: i.synchronousStandbyNames,
    // PostgreSQL reads the files again at each reload: a renewed certificate needs no restart.
    ...(i.tls ? { ssl: 'on', ssl_cert_file: i.tls.cert, ssl_key_file: i.tls.key } : {}),
    // On every node, so that whichever is primary archives; a standby archives nothing with 'on'.
    ...(i.archive
      ? {
          archive_mode: 'on',
          archive_command: i.archive.command,
          restore_command: i.archive.restoreCommand,
          unix_socket_directories: i.archive.socketDir,
        }
      : {}),
  };
  if (i.upstream) {
    own['primary_conninfo'] = upstreamConninfo(i.upstream, i.node);
    own['primary_slot_name'] = i.upstream.slot;
  }
  return own;
}

/**
 * synchronous_standby_names for a primary whose possible standbys are `standbys` (application
 * names): `FIRST n (...)` waits for the first n in list order that are connected, `ANY n (...)` for any n.
 */
export function synchronousStandbyNames(
  mode: 'async' | 'sync' | 'quorum',
  count: number,
  standbys: readonly string[],
): string {
  if (mode === 'async' || standbys.length === 0) return '';
  const list = standbys.map((n) => `"${n}"`).join(', ');
  return `${mode === 'sync' ? 'FIRST' : 'ANY'} ${count} (${list})`;
}

/** The libpq conninfo a replica streams with: its node name as application_name, password from the passfile. */
export function upstreamConninfo(u: UpstreamConf, applicationName: string): string {
  return [
    `host=${u.host}`,
    `port=${u.port}`,
    `user=${u.user}`,
    ...(u.dbname === undefined ? [] : [`dbname=${quoteConninfo(u.dbname)}`]),
    `passfile=${quoteConninfo(u.passfile)}`,
    `application_name=${applicationName}`,
    'connect_timeout=5',
    ...verifyFullConninfo(u.sslRootCert),
  ].join(' ');
}

/** The conninfo words that make libpq check the server's certificate and name against `caFile`; none without TLS. */
export function verifyFullConninfo(caFile: string | undefined): string[] {
  return caFile ? ['sslmode=verify-full', `sslrootcert=${quoteConninfo(caFile)}`] : [];
}

/** Every setting this node's postgresql.conf sets, as PostgreSQL will read them. */
export function effectiveSettings(i: PostgresqlConfInput): Record<string, string> {
  return {
    ...defaultSettings(i.nodeCount, i.pgMajor, i.walSegmentSize),
    // A quiet primary's last commits still reach the archive within 5 minutes, in a segment of its own.
    ...(i.archive ? { archive_timeout: '5min' } : {}),
    ...i.settings,
    ...identitySettings(i),
  };
}

/** Renders the whole postgresql.conf of one node. */
export function renderPostgresqlConf(i: PostgresqlConfInput): string {
  const lines = Object.entries(effectiveSettings(i)).map(([k, v]) => `${k} = ${quoteSetting(v)}`);
  return [
    `# Managed by pgrepl for node ${i.node} of cluster ${i.cluster}; changes here are overwritten.`,
    '# Change settings in pgrepl.yaml (settings:) and run `pgrepl up`.',
    ...lines,
    '',
  ].join('\n');
}

/** A value as postgresql.conf quotes it. */
export function quoteSetting(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** A conninfo value, quoted when it holds a space, a quote or a backslash. */
export function quoteConninfo(v: string): string {
  return /[\s'\\]/.test(v) ? `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : v;
}
