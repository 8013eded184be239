import { shellQuote } from '../shell-quote.js';
import { basename, dirname, join } from 'node:path';
import { passfileBesideDataDir, separateHosts, tlsFilesIn } from '../cluster/context/node-hosts.js';
import { renderNodeConfig } from '../cluster/decide/render-node-config.js';
import type { NodeHostFacts } from '../cluster/decide/render-node-config.js';
import type { ClusterSpec, NodeSpec, TlsFiles } from '../cluster-spec/cluster-spec.js';
import { verifyFullConninfo } from '../postgres/render-postgresql-conf.js';
import { walSegmentArgs } from '../postgres/instance-control.js';

/** One file of a bundle: its path inside the bundle, its text, its mode. */
export interface BundleFile {
  readonly path: string;
  readonly content: string;
  readonly mode: number;
}

export interface HostBundleInput {
  readonly spec: ClusterSpec;
  /** bin directory of PostgreSQL on the target hosts (the scripts honour $PG_BIN over it). */
  readonly binDir: string;
  readonly pgMajor: number;
  /**
   * Real passwords for .env, with the SCRAM verifier of the replication one (the primary's
   * setup.sh creates the role with it, so the password itself is never in SQL); placeholders when absent.
   */
  readonly secrets: { superuser: string; replication: string; replicationVerifier: string } | undefined;
  /**
   * With `tls: auto`: the CA's certificate and each node's certificate (PEM), and its key only when
   * secrets are rendered; each folder gets its node's files under tls/. undefined otherwise.
   */
  readonly certs: BundleCerts | undefined;
}

/** The PEM files `tls: auto` gives each node's folder; a key is absent unless secrets are rendered. */
export interface BundleCerts {
  readonly ca: string;
  readonly nodes: Readonly<Record<string, { readonly cert: string; readonly key: string | undefined }>>;
}

const PLACEHOLDER = 'change-me';

/**
 * `pgrepl render conf`: one folder per node for hosts without Docker, each with that node's own
 * postgresql.conf and pg_hba.conf, a .env for its passwords, a setup.sh (initdb and role and slots
 * on the primary; a pg_basebackup clone on a replica) and a README with the commands in order, in
 * English and in Portuguese.
 * Pure: the same spec gives the same files (golden-tested).
 */
export function renderHostBundle(i: HostBundleInput): BundleFile[] {
  const { spec } = i;
  const [primary, ...replicas] = spec.nodes;
  if (!primary) return [];
  // On separate hosts each node connects from its own address, which is what pg_hba must name.
  const facts = { pgMajor: i.pgMajor, hosts: separateHosts(spec) };
  const files: BundleFile[] = LANGS.map(({ lang, file }) => ({
    path: file,
    content: indexReadme(spec, primary, replicas, lang),
    mode: 0o644,
  }));
  for (const node of spec.nodes) {
    const upstream = node === primary ? undefined : primary;
    const config = renderNodeConfig(spec, facts, node, upstream);
    const dir = node.name;
    files.push(...tlsBundleFiles(dir, node, i.certs));
    files.push(
      { path: `${dir}/postgresql.conf`, content: config.postgresqlConf, mode: 0o644 },
      { path: `${dir}/pg_hba.conf`, content: config.pgHba, mode: 0o644 },
      { path: `${dir}/.env`, content: envFile(node, i.secrets), mode: 0o600 },
      {
        path: `${dir}/setup.sh`,
        content: upstream
          ? cloneScript(spec, node, upstream, i.binDir, facts)
          : primaryScript(spec, node, i.binDir, facts),
        mode: 0o755,
      },
      ...LANGS.map(({ lang, file }) => ({
        path: `${dir}/${file}`,
        content: nodeReadme(spec, node, upstream, lang, tlsOn(facts, node)),
        mode: 0o644,
      })),
    );
  }
  return files;
}

/** A node's tls/ folder: the CA, its certificate (public), and its key (0600) when given. */
export function tlsBundleFiles(dir: string, node: NodeSpec, certs: BundleCerts | undefined): BundleFile[] {
  const own = certs?.nodes[node.name];
  if (!certs || !own) return [];
  const at = tlsFilesIn(`${dir}/tls`, node.name);
  return [
    { path: at.ca, content: certs.ca, mode: 0o644 },
    { path: at.cert, content: own.cert, mode: 0o644 },
    ...(own.key === undefined ? [] : [{ path: at.key, content: own.key, mode: 0o600 }]),
  ];
}

type Facts = { readonly hosts: Readonly<Record<string, NodeHostFacts>> };

/** Where `node`'s TLS files are on its host; undefined without TLS. */
function tlsOn(facts: Facts, node: NodeSpec): TlsFiles | undefined {
  return facts.hosts[node.name]?.tls;
}

/**
 * Puts the node's TLS files where its postgresql.conf names them: with `tls: auto` they come from
 * the folder's tls/ (refused when missing); files the spec names must already be on the host.
 */
function tlsSetup(spec: ClusterSpec, node: NodeSpec, tls: TlsFiles | undefined): string {
  if (!tls) return '';
  const own = [tls.ca, tls.cert, tls.key];
  if (spec.tls === 'files')
    return `for f in ${own.map(shellQuote).join(' ')}; do
  if [ ! -r "$f" ]; then echo "$f is missing: the spec names it as this node's TLS file" >&2; exit 1; fi
done
`;
  const names = own.map((f) => basename(f));
  return `echo "TLS: the cluster's CA and ${node.name}'s certificate and key into ${dirname(tls.cert)}"
for f in ${names.join(' ')}; do
  if [ ! -s "tls/$f" ]; then
    echo "put tls/$f here first: pgrepl keeps it in its state dir's tls/ (render --with-secrets includes the key)" >&2; exit 1
  fi
done
install -d -m 700 ${shellQuote(dirname(tls.cert))}
install -m 600 ${names.map((f) => `tls/${f}`).join(' ')} ${shellQuote(dirname(tls.cert))}/
`;
}

/** libpq environment that makes psql check the server's certificate and name; empty without TLS. */
function sslEnv(tls: TlsFiles | undefined): string {
  return tls ? `PGSSLMODE=verify-full PGSSLROOTCERT=${shellQuote(tls.ca)} ` : '';
}

function envFile(node: NodeSpec, secrets: HostBundleInput['secrets']): string {
  return [
    `# Passwords for node ${node.name}. ${secrets ? 'Real secrets: keep this file 0600.' : `Replace ${PLACEHOLDER} before running setup.sh.`}`,
    // Quoted: setup.sh sources this file, and a password may hold any character.
    `PGREPL_SUPERUSER_PASSWORD=${shellQuote(secrets?.superuser ?? PLACEHOLDER)}`,
    `PGREPL_REPLICATION_PASSWORD=${shellQuote(secrets?.replication ?? PLACEHOLDER)}`,
    '# The SCRAM verifier of that password, which the primary stores: `printf %s "$PASSWORD" | pgrepl scram-verifier`',
    `PGREPL_REPLICATION_VERIFIER=${shellQuote(secrets?.replicationVerifier ?? PLACEHOLDER)}`,
    '',
  ].join('\n');
}

/** Shell prologue shared by both scripts: strict mode, .env, refusal of placeholders. */
function prologue(node: NodeSpec, role: string, binDir: string, needs: readonly string[]): string {
  return `#!/usr/bin/env bash
# Generated by pgrepl for node ${node.name} (${role}). Run it on that host as the OS user that runs
# PostgreSQL (not root). It stops at the first error and is safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
set -a; . ./.env; set +a
for v in ${needs.join(' ')}; do
  if [ -z "\${!v:-}" ] || [ "\${!v}" = ${PLACEHOLDER} ]; then echo "set $v in .env first" >&2; exit 1; fi
done
PG_BIN="\${PG_BIN:-${binDir}}"
DATA=${shellQuote(node.dataDir)}
if [ -e "$DATA/PG_VERSION" ]; then echo "$DATA already holds a database; nothing to do"; exit 0; fi
mkdir -p "$(dirname "$DATA")"
umask 077
# libpq passfile fields escape ':' and '\\'
escape() { printf '%s' "$1" | sed -e 's/\\\\/\\\\\\\\/g' -e 's/:/\\\\:/g'; }
`;
}

function primaryScript(spec: ClusterSpec, node: NodeSpec, binDir: string, facts: Facts): string {
  const tls = tlsOn(facts, node);
  const slots = spec.nodes
    .filter((n) => n !== node)
    .map((n) => `SELECT pg_create_physical_replication_slot('${n.name}', true);`)
    .join('\n');
  return `${prologue(node, 'primary', binDir, ['PGREPL_SUPERUSER_PASSWORD', 'PGREPL_REPLICATION_VERIFIER'])}${tlsSetup(spec, node, tls)}
pwfile=$(mktemp); adminpass=$(mktemp); trap 'rm -f "$pwfile" "$adminpass"' EXIT
printf '%s\\n' "$PGREPL_SUPERUSER_PASSWORD" > "$pwfile"
printf '*:*:*:%s:%s\\n' ${spec.superuser.name} "$(escape "$PGREPL_SUPERUSER_PASSWORD")" > "$adminpass"

echo "initdb (data checksums, so pg_rewind works later; SCRAM only)"
"$PG_BIN/initdb" -D "$DATA" -U ${spec.superuser.name} --pwfile="$pwfile" --auth=scram-sha-256 --data-checksums --encoding=UTF8 --locale=C.UTF-8${walSegmentArgs(
    spec.postgres.walSegmentSize,
  )
    .map((a) => ` ${a}`)
    .join('')} >/dev/null
cp postgresql.conf pg_hba.conf "$DATA/"
"$PG_BIN/pg_ctl" start -D "$DATA" -l "$DATA/../${node.name}.log" -w -s

echo "replication role and one slot per replica, before any replica clones"
${sslEnv(tls)}PGPASSFILE="$adminpass" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h ${node.host} -p ${node.port} -U ${spec.superuser.name} -d postgres <<'SQL'
\\getenv replication_verifier PGREPL_REPLICATION_VERIFIER
CREATE ROLE "${spec.replication.user}" WITH LOGIN REPLICATION PASSWORD :'replication_verifier';
${slots}
SQL
echo "${node.name} is the primary; now run setup.sh on each replica"
`;
}

function cloneScript(
  spec: ClusterSpec,
  node: NodeSpec,
  upstream: NodeSpec,
  binDir: string,
  facts: Facts,
): string {
  const passfile = passfileBesideDataDir(node);
  const tls = tlsOn(facts, node);
  const conninfo = [
    `host=${upstream.host} port=${upstream.port} user=${spec.replication.user} passfile=$passfile application_name=${node.name}`,
    ...verifyFullConninfo(tls?.ca),
  ].join(' ');
  return `${prologue(node, `replica of ${upstream.name}`, binDir, ['PGREPL_REPLICATION_PASSWORD'])}${tlsSetup(spec, node, tls)}
passfile=${shellQuote(passfile)}
printf '*:*:replication:%s:%s\\n' ${spec.replication.user} "$(escape "$PGREPL_REPLICATION_PASSWORD")" > "$passfile"

echo "cloning from ${upstream.name} through slot ${node.name} (pg_basebackup -X stream -R -S ${node.name})"
tmp="$DATA.pgrepl-clone"; rm -rf "$tmp"
"$PG_BIN/pg_basebackup" -D "$tmp" -d "${conninfo}" \\
  -X stream -R -S ${node.name} --checkpoint=fast --progress
# This node's own configuration, not a copy of the primary's; primary_conninfo lives there only.
cp postgresql.conf pg_hba.conf "$tmp/"
sed -i -e '/^primary_conninfo/d' -e '/^primary_slot_name/d' "$tmp/postgresql.auto.conf"
mv "$tmp" "$DATA"
"$PG_BIN/pg_ctl" start -D "$DATA" -l "$DATA/../${node.name}.log" -w -s
echo "${node.name} streams from ${upstream.name}"
`;
}

/** The READMEs' sentences; the commands are the same in both languages. */
const README_TEXT = {
  en: {
    replicaOf: (u: string) => `replica of ${u}`,
    primary: 'primary',
    ofCluster: 'of cluster',
    listens: (host: string, port: number, dataDir: string) =>
      `Listens on ${host}:${port}, data in \`${dataDir}\`.`,
    afterPrimary: (u: string) => `Run this after setup.sh of the primary (${u}) has finished.`,
    samePasswords: 'the same passwords as the primary',
    clones: 'clones the primary and starts this replica',
    promoteWhen: 'If the primary fails, promote this node (only after the primary is stopped for good):',
    first: 'Run this first, before any replica.',
    bothPasswords: "both passwords, and the replication one's verifier:",
    setsUp: 'initdb, start, replication role, one slot per replica',
    noComeback:
      'After a failover this node must not come back as a primary: stop it, then rejoin it as a\nreplica of the new primary with pg_rewind (its data checksums allow it).',
    rejoin: '## Rejoin after a failover',
    rejoinWhy: (other: string, node: string) =>
      `When another node (here ${other}) has been promoted, bring ${node} back as its replica;\npg_rewind throws away what only this node had, after a CHECKPOINT on the new primary:`,
    conninfo: 'in postgresql.conf',
    indexTitle: (cluster: string) => `# Cluster ${cluster}: one folder per host`,
    indexHow:
      'Copy each folder to its host, fill in `.env`, then run `setup.sh` as the PostgreSQL OS user,\nthe primary first:',
    on: 'on',
    thePrimary: 'the primary',
    aReplica: 'a replica',
    other: 'Em português: README.pt-BR.md.',
    tls: (node: string, dir: string) =>
      `TLS: every connection between the nodes is encrypted and checked. setup.sh installs tls/ (the cluster's CA,\n${node}'s certificate and key) into ${dir}; the key, tls/${node}.key, comes with\n\`pgrepl render conf --with-secrets\` or from the tls/ folder of pgrepl's state dir.`,
  },
  'pt-BR': {
    replicaOf: (u: string) => `réplica de ${u}`,
    primary: 'primário',
    ofCluster: 'do cluster',
    listens: (host: string, port: number, dataDir: string) =>
      `Escuta em ${host}:${port}, dados em \`${dataDir}\`.`,
    afterPrimary: (u: string) => `Rode isto depois que o setup.sh do primário (${u}) terminar.`,
    samePasswords: 'as mesmas senhas do primário',
    clones: 'clona o primário e sobe esta réplica',
    promoteWhen: 'Se o primário falhar, promova este nó (só depois que o primário estiver parado de vez):',
    first: 'Rode isto primeiro, antes de qualquer réplica.',
    bothPasswords: 'as duas senhas, e o verificador da de replicação:',
    setsUp: 'initdb, sobe o servidor, cria a role de replicação e um slot por réplica',
    noComeback:
      'Depois de um failover este nó não pode voltar como primário: pare-o e traga-o de volta como\nréplica do novo primário com o pg_rewind (os checksums de dados permitem).',
    rejoin: '## Trazer de volta depois de um failover',
    rejoinWhy: (other: string, node: string) =>
      `Quando outro nó (aqui ${other}) tiver sido promovido, traga ${node} de volta como réplica dele;\no pg_rewind descarta o que só este nó tinha, depois de um CHECKPOINT no novo primário:`,
    conninfo: 'no postgresql.conf',
    indexTitle: (cluster: string) => `# Cluster ${cluster}: uma pasta por host`,
    indexHow:
      'Copie cada pasta para o seu host, preencha o `.env` e rode o `setup.sh` com o usuário do sistema\nque roda o PostgreSQL, o primário primeiro:',
    on: 'em',
    thePrimary: 'o primário',
    aReplica: 'uma réplica',
    other: 'In English: README.md.',
    tls: (node: string, dir: string) =>
      `TLS: toda conexão entre os nós é cifrada e verificada. O setup.sh instala tls/ (a CA do cluster, o\ncertificado e a chave de ${node}) em ${dir}; a chave, tls/${node}.key, vem com\n\`pgrepl render conf --with-secrets\` ou da pasta tls/ do diretório de estado do pgrepl.`,
  },
};
type Lang = keyof typeof README_TEXT;
const LANGS: readonly { lang: Lang; file: string }[] = [
  { lang: 'en', file: 'README.md' },
  { lang: 'pt-BR', file: 'README.pt-BR.md' },
];

function nodeReadme(
  spec: ClusterSpec,
  node: NodeSpec,
  upstream: NodeSpec | undefined,
  lang: Lang,
  tls: TlsFiles | undefined,
): string {
  const t = README_TEXT[lang];
  const psql = (n: NodeSpec) =>
    `${sslEnv(tls)}psql -h ${n.host} -p ${n.port} -U ${spec.superuser.name} -d postgres`;
  const steps = upstream
    ? [
        t.afterPrimary(upstream.name),
        '',
        '```sh',
        `vi .env            # ${t.samePasswords}`,
        `./setup.sh         # ${t.clones}`,
        `${psql(upstream)} -c "SELECT application_name, state FROM pg_stat_replication"   # ${node.name} | streaming`,
        '```',
        '',
        t.promoteWhen,
        '',
        '```sh',
        `${psql(node)} -c "SELECT pg_promote()"`,
        '```',
      ]
    : [
        t.first,
        '',
        '```sh',
        `vi .env            # ${t.bothPasswords}`,
        '                   #   printf %s "$PASSWORD" | pgrepl scram-verifier',
        `./setup.sh         # ${t.setsUp}`,
        `${psql(node)} -c "SELECT slot_name, active FROM pg_replication_slots"`,
        '```',
        '',
        t.noComeback,
      ];
  const other = spec.nodes.find((n) => n !== node) ?? node;
  const data = shellQuote(node.dataDir);
  const rejoin = [
    '',
    t.rejoin,
    '',
    t.rejoinWhy(other.name, node.name),
    '',
    '```sh',
    `"$PG_BIN/pg_ctl" stop -D ${data} -m fast`,
    `${psql(other)} -c CHECKPOINT`,
    `"$PG_BIN/pg_rewind" -D ${data} --source-server="${[`host=${other.host} port=${other.port} user=${spec.superuser.name} dbname=postgres`, ...verifyFullConninfo(tls?.ca)].join(' ')}" --progress`,
    `# ${t.conninfo}: primary_conninfo host=${other.host} port=${other.port}, primary_slot_name = '${node.name}'`,
    `touch ${shellQuote(join(node.dataDir, 'standby.signal'))}`,
    `"$PG_BIN/pg_ctl" start -D ${data} -l ${shellQuote(join(dirname(node.dataDir), `${node.name}.log`))} -w`,
    '```',
  ];
  return [
    `# ${node.name} — ${upstream ? t.replicaOf(upstream.name) : t.primary} ${t.ofCluster} ${spec.cluster}`,
    '',
    t.other,
    '',
    t.listens(node.host, node.port, node.dataDir),
    '',
    ...(tls && spec.tls === 'auto' ? [t.tls(node.name, dirname(tls.cert)), ''] : []),
    ...steps,
    ...rejoin,
    '',
  ].join('\n');
}

function indexReadme(spec: ClusterSpec, primary: NodeSpec, replicas: NodeSpec[], lang: Lang): string {
  const t = README_TEXT[lang];
  return [
    t.indexTitle(spec.cluster),
    '',
    t.other,
    '',
    t.indexHow,
    '',
    `1. \`${primary.name}/\` ${t.on} ${primary.host}: ${t.thePrimary}`,
    ...replicas.map((r, n) => `${n + 2}. \`${r.name}/\` ${t.on} ${r.host}: ${t.aReplica}`),
    '',
  ].join('\n');
}
