/** What `pgrepl init` asks for; the embedded default is this with its defaults. */
export interface TemplateOptions {
  name: string;
  nodes: number;
  host: string;
  basePort: number;
  dir: string;
}

export const TEMPLATE_DEFAULTS: TemplateOptions = {
  name: 'demo',
  nodes: 3,
  host: '127.0.0.1',
  basePort: 54321,
  dir: '.pgrepl',
};

/** Renders a commented pgrepl.yaml, so a user learns the spec from the file it writes. */
export function renderSpecTemplate(o: TemplateOptions): string {
  const nodes = Array.from({ length: o.nodes }, (_, i) => {
    const name = `pg${i + 1}`;
    const role = i === 0 ? '  # the first node is the initial primary' : '';
    return [
      `  - name: ${name}${role}`,
      `    host: ${o.host}`,
      `    port: ${o.basePort + i}`,
      `    dataDir: ${o.dir}/data/${name}`,
    ].join('\n');
  });
  return `# pgrepl.yaml: the cluster as you want it. \`pgrepl up\` makes the machine match it.
# Relative paths are relative to this file.
cluster: ${o.name}

# Secrets (generated passwords, 0600), server logs and pgrepl's own state.
stateDir: ${o.dir}

postgres:
  # binDir: /usr/lib/postgresql/15/bin   # default: PGREPL_PG_BIN, pg_config --bindir, PATH, newest /usr/lib/postgresql/*/bin
  osUser: postgres                        # the OS user that runs PostgreSQL when pgrepl runs as root

superuser:
  name: postgres
  # password: { env: PGREPL_SUPERUSER_PASSWORD }   # or { file: /path/0600 }; omitted: generated once in stateDir

replication:
  user: replicator                        # LOGIN REPLICATION role the replicas stream as
  # password: { env: PGREPL_REPLICATION_PASSWORD }

# postgresql.conf overrides, applied to every node (pgrepl owns listen_addresses, port, primary_conninfo, ...).
settings:
  shared_buffers: 128MB
  wal_keep_size: 0                        # slots keep what each node needs; pg_rewind copies all kept WAL
  max_slot_wal_keep_size: 2GB             # a dead replica's slot cannot fill the disk

# Who else may connect (scram-sha-256 only). Replication rules for the nodes are added by pgrepl.
access:
  - cidr: ${o.host}/32
    database: all
    user: all

# Base backups and a WAL archive with pgBackRest (apt-get install pgbackrest): every node archives
# while it is the primary; \`pgrepl backup\`, \`pgrepl backups\`, \`pgrepl restore --to TIME --into DIR\`.
# backup:
#   repo: { path: /var/backups/pgrepl }  # default: backup/repo under stateDir; or a bucket:
#   # repo: { s3: { bucket: B, endpoint: s3.eu-west-1.amazonaws.com, region: eu-west-1,
#   #               key: { env: AWS_ACCESS_KEY_ID }, secret: { file: /etc/pgrepl/s3.secret } } }
#   retention: { full: 2, diff: 6 }      # full (and differential) backups kept; older ones expire with their WAL
#   fromReplica: true                    # copy from a streaming replica: the primary only starts and stops the backup
#   schedule: { full: "0 3 * * 0", incr: "0 * * * *" }  # with agents (up --ha): the leader's agent runs them

# Logical replication with other clusters (docs/logical.md); a publication sets wal_level logical.
# \`pgrepl logical publish\` and \`pgrepl logical subscribe\` add here, then run up.
# logical:
#   publications: [{ name: shop, tables: [orders, customers] }]
#   subscriptions: [{ name: shop_copy, publication: shop, from: { spec: ../blue/pgrepl.yaml } }]

nodes:
${nodes.join('\n')}
`;
}
