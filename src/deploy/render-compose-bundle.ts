import { stringify } from 'yaml';
import { renderPgHba } from '../postgres/render-pg-hba.js';
import {
  renderPostgresqlConf,
  synchronousStandbyNames,
  verifyFullConninfo,
} from '../postgres/render-postgresql-conf.js';
import type { ClusterSpec, NodeSpec, TlsFiles } from '../cluster-spec/cluster-spec.js';
import { tlsFilesIn } from '../cluster/context/node-hosts.js';
import { shellQuote } from '../shell-quote.js';
import { tlsBundleFiles } from './render-host-bundle.js';
import type { BundleCerts, BundleFile } from './render-host-bundle.js';
import { walSegmentArgs } from '../postgres/instance-control.js';

export interface ComposeBundleInput {
  readonly spec: ClusterSpec;
  /** Image with its tag; the official image, alpine flavour, by default. */
  readonly image: string;
  readonly secrets: { superuser: string; replication: string } | undefined;
  /** With `tls: auto`, the PEM files each node's folder gets under tls/ (a key only with secrets). */
  readonly certs: BundleCerts | undefined;
}

export const DEFAULT_IMAGE = 'postgres:16-alpine';

/** Paths inside the container (the official image's layout). */
const PGDATA = '/var/lib/postgresql/data';
const CONF_DIR = '/etc/pgrepl';
const SOCKET_DIR = '/var/run/postgresql';
/**
 * The replica's passfile lives in the data volume, which the image's entrypoint hands to postgres.
 * Relative on purpose: server processes run in the data directory, wherever that is mounted.
 */
const PASSFILE = 'pgrepl-replication.pgpass';
const INIT_SCRIPT = '10-pgrepl-replication.sh';
/** The node's TLS files as mounted (read-only, owned by whoever owns them on the host)... */
const TLS_MOUNT = `${CONF_DIR}/tls`;
/** ...and as PostgreSQL reads them: copied by pgrepl-entrypoint.sh, owned by postgres (it reads no other key). */
const TLS_DIR = '/var/lib/postgresql/tls';
const tlsIn = (dir: string, node: NodeSpec) => tlsFilesIn(dir, node.name);

/**
 * `pgrepl render compose`: a folder per node, copied to that node's host and started with
 * `docker compose up -d`. Fixes the manual: the configuration is really used (config_file and
 * hba_file are passed on the command line), the init script is mounted under the name it has,
 * replication goes through the `replication` pseudo-database with SCRAM from each node's address,
 * each replica uses its slot, and a restart never brings a demoted primary back as a second
 * writable primary (pgrepl-entrypoint.sh). Pure and golden-tested.
 */
export function renderComposeBundle(i: ComposeBundleInput): BundleFile[] {
  const { spec } = i;
  const [primary] = spec.nodes;
  if (!primary) return [];
  const major = Number.parseInt(/:(\d+)/.exec(i.image)?.[1] ?? '16', 10);
  const files: BundleFile[] = [];
  for (const node of spec.nodes) {
    const upstream = node === primary ? undefined : primary;
    const dir = node.name;
    files.push(...tlsBundleFiles(dir, node, i.certs));
    files.push(
      { path: `${dir}/compose.yaml`, content: composeFile(i, node, upstream !== undefined), mode: 0o644 },
      { path: `${dir}/.env`, content: envFile(spec, node, i.secrets), mode: 0o600 },
      { path: `${dir}/postgresql.conf`, content: containerConf(spec, node, upstream, major), mode: 0o644 },
      { path: `${dir}/pg_hba.conf`, content: containerHba(spec, node), mode: 0o644 },
      { path: `${dir}/pg_ident.conf`, content: identFile(spec), mode: 0o644 },
      { path: `${dir}/pgrepl-entrypoint.sh`, content: guardScript(spec, node), mode: 0o755 },
    );
    if (upstream) {
      files.push(
        { path: `${dir}/clone.sh`, content: cloneScript(node, upstream), mode: 0o755 },
        {
          path: `${dir}/pgrepl-clone.sh`,
          content: cloneInner(spec, node, upstream),
          mode: 0o755,
        },
      );
    } else
      files.push({ path: `${dir}/initdb.d/${INIT_SCRIPT}`, content: initScript(spec, node), mode: 0o755 });
    files.push(
      { path: `${dir}/README.md`, content: readme(spec, node, upstream, 'en'), mode: 0o644 },
      { path: `${dir}/README.pt-BR.md`, content: readme(spec, node, upstream, 'pt-BR'), mode: 0o644 },
    );
  }
  return files;
}

function composeFile(i: ComposeBundleInput, node: NodeSpec, replica: boolean): string {
  const volumes = [
    `./data:${PGDATA}`,
    `./postgresql.conf:${CONF_DIR}/postgresql.conf:ro`,
    `./pg_hba.conf:${CONF_DIR}/pg_hba.conf:ro`,
    `./pg_ident.conf:${CONF_DIR}/pg_ident.conf:ro`,
    './pgrepl-entrypoint.sh:/usr/local/bin/pgrepl-entrypoint.sh:ro',
    ...tlsVolumes(i.spec, node),
    ...(replica ? [] : [`./initdb.d/${INIT_SCRIPT}:/docker-entrypoint-initdb.d/${INIT_SCRIPT}:ro`]),
  ];
  const doc = {
    services: {
      postgres: {
        image: i.image,
        container_name: `${i.spec.cluster}-${node.name}`,
        // unless-stopped, with the guard below: a restart never makes a demoted primary writable.
        restart: 'unless-stopped',
        entrypoint: ['/usr/local/bin/pgrepl-entrypoint.sh'],
        command: [
          'postgres',
          '-c',
          `config_file=${CONF_DIR}/postgresql.conf`,
          '-c',
          `hba_file=${CONF_DIR}/pg_hba.conf`,
          '-c',
          `ident_file=${CONF_DIR}/pg_ident.conf`,
        ],
        env_file: ['.env'],
        environment: {
          POSTGRES_INITDB_ARGS: [
            '--data-checksums --auth-host=scram-sha-256 --auth-local=peer',
            ...walSegmentArgs(i.spec.postgres.walSegmentSize),
          ].join(' '),
          PGREPL_NODE: node.name,
        },
        ports: [`${node.port}:5432`],
        volumes,
        healthcheck: {
          test: ['CMD', 'pg_isready', '-h', SOCKET_DIR, '-U', i.spec.superuser.name, '-d', 'postgres'],
          interval: '5s',
          timeout: '3s',
          retries: 10,
          start_period: '30s',
        },
      },
    },
  };
  return `# Generated by pgrepl for node ${node.name} of cluster ${i.spec.cluster}${replica ? ' (replica: run ./clone.sh first)' : ' (primary)'}.\n# Start it with: docker compose up -d\n${stringify(doc)}`;
}

function envFile(spec: ClusterSpec, node: NodeSpec, secrets: ComposeBundleInput['secrets']): string {
  const peers = spec.nodes
    .filter((n) => n !== node)
    .map((n) => `${n.host}:${n.port}`)
    .join(',');
  return [
    `# Settings and passwords for node ${node.name}. ${secrets ? 'Real secrets: keep this file 0600.' : 'Replace change-me before the first start.'}`,
    `POSTGRES_USER=${spec.superuser.name}`,
    `POSTGRES_PASSWORD=${shellQuote(secrets?.superuser ?? 'change-me')}`,
    'POSTGRES_DB=postgres',
    `PGREPL_REPLICATION_USER=${spec.replication.user}`,
    `PGREPL_REPLICATION_PASSWORD=${shellQuote(secrets?.replication ?? 'change-me')}`,
    '# The other nodes, asked before this one starts as a primary (never two primaries).',
    `PGREPL_PEERS=${peers}`,
    'TZ=UTC',
    '',
  ].join('\n');
}

/** Where the node's TLS files come from on its host: the folder's tls/ (auto), or the spec's paths. */
function tlsVolumes(spec: ClusterSpec, node: NodeSpec): string[] {
  if (spec.tls === 'off') return [];
  const inside = tlsIn(TLS_MOUNT, node);
  const own = spec.tls === 'files' ? node.tls : undefined;
  // The folder's tls/ by a relative path, which must start with ./ (else Compose takes it for a named volume).
  const outside = (k: keyof TlsFiles) => own?.[k] ?? `./${tlsIn('tls', node)[k]}`;
  return (['ca', 'cert', 'key'] as const).map((k) => `${outside(k)}:${inside[k]}:ro`);
}

function containerConf(
  spec: ClusterSpec,
  node: NodeSpec,
  upstream: NodeSpec | undefined,
  major: number,
): string {
  const conf = renderPostgresqlConf({
    cluster: spec.cluster,
    node: node.name,
    // Inside the container: all interfaces (the published port and pg_hba decide who gets in).
    host: '*',
    port: 5432,
    nodeCount: spec.nodes.length,
    pgMajor: major,
    walSegmentSize: spec.postgres.walSegmentSize ?? 16,
    settings: spec.settings,
    synchronousStandbyNames: synchronousStandbyNames(
      spec.replication.mode,
      spec.replication.syncCount,
      spec.nodes.filter((n) => n !== node).map((n) => n.name),
    ),
    upstream: upstream && {
      host: upstream.host,
      port: upstream.port,
      user: spec.replication.user,
      passfile: PASSFILE,
      slot: node.name,
      sslRootCert: spec.tls === 'off' ? undefined : tlsIn(TLS_DIR, node).ca,
    },
    tls: spec.tls === 'off' ? undefined : tlsIn(TLS_DIR, node),
    archive: undefined,
  });
  // The image's entrypoint runs its init scripts over the unix socket: keep it, in its usual place.
  return conf.replace(/^unix_socket_directories = ''$/m, `unix_socket_directories = '${SOCKET_DIR}'`);
}

function containerHba(spec: ClusterSpec, node: NodeSpec): string {
  const hosts = [...new Set(spec.nodes.map((n) => n.host))];
  return (
    renderPgHba({
      node: node.name,
      superuser: spec.superuser.name,
      replicationUser: spec.replication.user,
      replicationSources: hosts,
      adminSources: hosts,
      access: spec.access,
      logical: [],
      ssl: spec.tls !== 'off',
      localSuperuser: false,
    }) +
    "# the image's init scripts and healthcheck, inside the container: the OS user postgres only\n" +
    'local   all          all                                       peer map=pgrepl\n'
  );
}

function identFile(spec: ClusterSpec): string {
  return `# MAPNAME  SYSTEM-USERNAME  PG-USERNAME\npgrepl     postgres         ${spec.superuser.name}\n`;
}

function initScript(spec: ClusterSpec, node: NodeSpec): string {
  const slots = spec.nodes
    .filter((n) => n !== node)
    .map((n) => `SELECT pg_create_physical_replication_slot('${n.name}', true);`)
    .join('\n');
  return `#!/bin/sh
# Run once by the image's entrypoint, on the first start of ${node.name}: the replication role and one
# physical slot per replica, so each replica has its slot before it clones. The password is read
# from the environment by psql (\\getenv), not put on a command line.
set -eu
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\\getenv replication_password PGREPL_REPLICATION_PASSWORD
\\getenv replication_user PGREPL_REPLICATION_USER
CREATE ROLE :"replication_user" WITH LOGIN REPLICATION PASSWORD :'replication_password';
${slots}
SQL
`;
}

function cloneScript(node: NodeSpec, upstream: NodeSpec): string {
  return `#!/bin/sh
# Generated by pgrepl for node ${node.name}: clones ${upstream.name} into ./data, inside this node's own
# image (pgrepl-clone.sh does the work). Run it once, before the first \`docker compose up -d\`.
set -eu
cd "$(dirname "$0")"
if [ -e data/PG_VERSION ]; then echo "./data already holds a database; nothing to do"; exit 0; fi
if grep -q "=.change-me" .env; then echo "set the passwords in .env first" >&2; exit 1; fi
mkdir -p data
exec docker compose run --rm --no-deps -v "$PWD/pgrepl-clone.sh:/usr/local/bin/pgrepl-clone.sh:ro" \\
  --entrypoint /usr/local/bin/pgrepl-clone.sh postgres
`;
}

/** The clone itself, run in the container (as root, it drops to postgres) or on a test host as postgres. */
function cloneInner(spec: ClusterSpec, node: NodeSpec, upstream: NodeSpec): string {
  return `#!/bin/sh
# pgrepl: clone ${upstream.name} into $PGDATA through slot ${node.name} (pg_basebackup -X stream -R -S ${node.name}).
set -eu
PGDATA="\${PGDATA:-${PGDATA}}"
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA"; chown postgres "$PGDATA"; chmod 700 "$PGDATA"
  exec su-exec postgres "$0" "$@"
fi
if [ -e "$PGDATA/PG_VERSION" ]; then echo "$PGDATA already holds a database; nothing to do"; exit 0; fi
umask 077
pass=$(mktemp); trap 'rm -f "$pass"' EXIT
# libpq passfile fields escape ':' and '\\'
esc() { printf '%s' "$1" | sed -e 's/\\\\/\\\\\\\\/g' -e 's/:/\\\\:/g'; }
printf '*:*:replication:%s:%s\\n' "$(esc "$PGREPL_REPLICATION_USER")" "$(esc "$PGREPL_REPLICATION_PASSWORD")" > "$pass"
if ! pg_basebackup -D "$PGDATA" -d "${[`host=${upstream.host} port=${upstream.port} user=$PGREPL_REPLICATION_USER passfile=$pass application_name=${node.name}`, ...verifyFullConninfo(spec.tls === 'off' ? undefined : tlsIn(TLS_MOUNT, node).ca)].join(' ')}" \\
    -X stream -R -S ${node.name} --checkpoint=fast --progress; then
  find "$PGDATA" -mindepth 1 -delete
  echo "pgrepl: the clone failed; ./data was emptied, run clone.sh again" >&2
  exit 1
fi
# primary_conninfo and primary_slot_name come from this node's postgresql.conf, not from -R.
sed -i -e '/^primary_conninfo/d' -e '/^primary_slot_name/d' "$PGDATA/postgresql.auto.conf"
cp "$pass" "$PGDATA/${PASSFILE}"
echo "pgrepl: ${node.name} cloned from ${upstream.name}; start it with docker compose up -d"
`;
}

/**
 * Runs before the image's own entrypoint. A data directory without standby.signal would start as
 * a primary; if any peer already answers as a primary, this node was demoted by a failover and
 * must be rejoined, so it refuses to start instead of becoming a second writable primary.
 */
function guardScript(spec: ClusterSpec, node: NodeSpec): string {
  const tls =
    spec.tls === 'off' ? undefined : { mounted: tlsIn(TLS_MOUNT, node), read: tlsIn(TLS_DIR, node) };
  return `#!/bin/sh
# pgrepl: never two writable primaries, even when the restart policy brings this container back.
set -eu
PGDATA="\${PGDATA:-${PGDATA}}"
${
  tls
    ? `# TLS: PostgreSQL reads only a key owned by its own user, so the mounted files are copied for it.
for f in ${tls.mounted.ca} ${tls.mounted.cert} ${tls.mounted.key}; do
  if [ ! -s "$f" ]; then echo "pgrepl: $f is missing: put the node's TLS files in ./tls (see README.md)" >&2; exit 78; fi
done
install -d -o postgres -g postgres -m 700 ${TLS_DIR}
install -o postgres -g postgres -m 600 ${tls.mounted.ca} ${tls.mounted.cert} ${tls.mounted.key} ${TLS_DIR}/
export PGSSLMODE=verify-full PGSSLROOTCERT=${tls.read.ca}
`
    : ''
}if [ -s "$PGDATA/PG_VERSION" ] && [ ! -e "$PGDATA/standby.signal" ] && [ -n "\${PGREPL_PEERS:-}" ]; then
  for peer in $(echo "$PGREPL_PEERS" | tr ',' ' '); do
    host="\${peer%:*}"; port="\${peer##*:}"
    ro=$(PGPASSWORD="$POSTGRES_PASSWORD" PGCONNECT_TIMEOUT=3 psql -X -q -t -A -h "$host" -p "$port" -U "$POSTGRES_USER" -d postgres \\
      -c 'SELECT pg_is_in_recovery()' 2>/dev/null || true)
    if [ "$ro" = f ]; then
      echo "pgrepl: $peer is already the primary, and this node would start as one: it was demoted." >&2
      echo "pgrepl: refusing to start; rejoin it as a replica of $peer (see README.md)." >&2
      exit 78
    fi
  done
fi
exec "\${PGREPL_NEXT_ENTRYPOINT:-docker-entrypoint.sh}" "$@"
`;
}

/** The README's sentences; the commands are the same in both languages. */
const README_TEXT = {
  en: {
    replicaOf: (u: string) => `replica of ${u}`,
    primary: 'primary',
    of: 'of cluster',
    copy: (host: string, port: number) =>
      `Copy this folder to the host ${host}; the node listens there on port ${port}.`,
    env: 'passwords (the same on every node)',
    clone: (slot: string) => `copies the primary into ./data through slot ${slot}`,
    healthy: 'healthy',
    on: 'on',
    promote: '## Promote (only once the primary is gone for good)',
    rejoin: '## Rejoin after another node was promoted',
    rejoinWhy: (other: string) =>
      `This container will not start as a second primary (pgrepl-entrypoint.sh asks its peers). Rewind it and\nmake it a replica of the new primary (here ${other}):`,
    conninfo: 'in postgresql.conf, point primary_conninfo at the new primary',
    tls: (node: string) =>
      `TLS: every connection between the nodes is encrypted and checked. ./tls holds the cluster's CA and\n${node}'s certificate; its key, tls/${node}.key (mode 0600), comes with \`pgrepl render compose --with-secrets\`\nor from the tls/ folder of pgrepl's state dir.`,
  },
  'pt-BR': {
    replicaOf: (u: string) => `réplica de ${u}`,
    primary: 'primário',
    of: 'do cluster',
    copy: (host: string, port: number) =>
      `Copie esta pasta para o host ${host}; o nó escuta lá na porta ${port}.`,
    env: 'senhas (as mesmas em todos os nós)',
    clone: (slot: string) => `copia o primário para ./data pelo slot ${slot}`,
    healthy: 'healthy',
    on: 'em',
    promote: '## Promover (só quando o primário se foi de vez)',
    rejoin: '## Trazer de volta depois que outro nó foi promovido',
    rejoinWhy: (other: string) =>
      `Este contêiner não sobe como um segundo primário (o pgrepl-entrypoint.sh consulta os outros nós). Rode o\npg_rewind nele e torne-o réplica do novo primário (aqui ${other}):`,
    conninfo: 'no postgresql.conf, aponte o primary_conninfo para o novo primário',
    tls: (node: string) =>
      `TLS: toda conexão entre os nós é cifrada e verificada. ./tls tem a CA do cluster e o certificado\nde ${node}; a chave, tls/${node}.key (modo 0600), vem com \`pgrepl render compose --with-secrets\`\nou da pasta tls/ do diretório de estado do pgrepl.`,
  },
};

function readme(
  spec: ClusterSpec,
  node: NodeSpec,
  upstream: NodeSpec | undefined,
  lang: keyof typeof README_TEXT,
): string {
  const t = README_TEXT[lang];
  const c = `${spec.cluster}-${node.name}`;
  const psql = (n: NodeSpec, sql: string) =>
    `docker exec -it ${spec.cluster}-${n.name} psql -U ${spec.superuser.name} -c "${sql}"`;
  const other = spec.nodes.find((n) => n !== node) ?? node;
  const lines = [
    `# ${node.name}: ${upstream ? t.replicaOf(upstream.name) : t.primary} ${t.of} ${spec.cluster}`,
    '',
    t.copy(node.host, node.port),
    '',
    ...(spec.tls === 'off' ? [] : [t.tls(node.name), '']),
    '```sh',
    `vi .env                    # ${t.env}`,
    ...(upstream ? [`./clone.sh                 # ${t.clone(node.name)}`] : []),
    'docker compose up -d',
    `docker compose ps          # ${c} ${t.healthy}`,
    ...(upstream
      ? [
          `${psql(upstream, 'SELECT application_name, state, sync_state FROM pg_stat_replication')}   # ${t.on} ${upstream.host}`,
          psql(node, 'SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()'),
        ]
      : [psql(node, 'SELECT slot_name, active FROM pg_replication_slots')]),
    '```',
    '',
    t.promote,
    '',
    '```sh',
    psql(node, 'SELECT pg_promote()'),
    '```',
    '',
    t.rejoin,
    '',
    t.rejoinWhy(`${other.name}, ${other.host}:${other.port}`),
    '',
    '```sh',
    'docker compose stop',
    `${psql(other, 'CHECKPOINT')}   # ${t.on} ${other.host}`,
    `docker compose run --rm --no-deps --entrypoint sh postgres -c 'PGPASSWORD="$POSTGRES_PASSWORD" su-exec postgres pg_rewind -D ${PGDATA} --source-server="${[`host=${other.host} port=${other.port} user=${spec.superuser.name} dbname=postgres`, ...verifyFullConninfo(spec.tls === 'off' ? undefined : tlsIn(TLS_MOUNT, node).ca)].join(' ')}" --progress'`,
    `touch data/standby.signal   # ${t.conninfo}`,
    'docker compose up -d',
    '```',
    '',
  ];
  return lines.join('\n');
}
