export interface HbaInput {
  node: string;
  superuser: string;
  replicationUser: string;
  /** Addresses the other nodes' replication connections come from (as the server sees them). */
  replicationSources: readonly string[];
  /** Addresses pgrepl's own admin connections come from. */
  adminSources: readonly string[];
  access: readonly { cidr: string; database: string; user: string }[];
  /** Logical replication: the replication user may connect to each published database from these addresses. */
  logical: readonly { database: string; sources: readonly string[] }[];
  /** Every rule admits TLS connections only (`hostssl`). */
  ssl: boolean;
  /** The superuser may connect over the unix socket too (pgBackRest's only way in), with SCRAM. */
  localSuperuser: boolean;
}

/**
 * Renders pg_hba.conf: SCRAM everywhere, no `trust`, a unix socket line only for the superuser
 * when backups need one (the socket's directory admits the PostgreSQL OS user alone), and
 * replication admitted only through the `replication` pseudo-database from the nodes' own addresses
 * (a `host all ...` line would not admit a replication connection at all). With TLS every rule is
 * `hostssl`: a connection without TLS matches none and is refused.
 */
export function renderPgHba(i: HbaInput): string {
  const type = i.ssl ? 'hostssl' : 'host   ';
  const row = (db: string, user: string, addr: string) =>
    `${type} ${db.padEnd(12)} ${user.padEnd(16)} ${cidrOf(addr).padEnd(24)} scram-sha-256`;
  return [
    `# Managed by pgrepl for node ${i.node}; changes here are overwritten.`,
    '# Add application rules in pgrepl.yaml (access:) and run `pgrepl up`.',
    `# TYPE${i.ssl ? '   ' : ''}  DATABASE     USER             ADDRESS                  METHOD`,
    '# pgrepl administration',
    ...unique(i.adminSources).map((a) => row('all', i.superuser, a)),
    ...(i.localSuperuser
      ? [
          `local${i.ssl ? '  ' : ''}   ${'all'.padEnd(12)} ${i.superuser.padEnd(16)} ${''.padEnd(24)} scram-sha-256`,
        ]
      : []),
    '# streaming replication and base backups between the nodes',
    ...unique(i.replicationSources).map((a) => row('replication', i.replicationUser, a)),
    ...(i.logical.length > 0
      ? ['# logical replication: subscribers of the publications (pgrepl.yaml logical:)']
      : []),
    ...unique(i.logical.flatMap((l) => unique(l.sources).map((a) => row(l.database, i.replicationUser, a)))),
    '# applications (pgrepl.yaml access:)',
    ...i.access.map((r) => row(r.database, r.user, r.cidr)),
    '',
  ].join('\n');
}

function cidrOf(addr: string): string {
  if (addr.includes('/')) return addr;
  return addr.includes(':') ? `${addr}/128` : `${addr}/32`;
}

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}
