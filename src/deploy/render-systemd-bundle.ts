import { parseDocument } from 'yaml';
import { isAbsolute } from 'node:path';
import type { ClusterSpec, NodeSpec, TlsFiles } from '../cluster-spec/cluster-spec.js';
import { PgreplError } from '../errors.js';
import { tlsFilesIn } from '../cluster/context/node-hosts.js';
import { tlsBundleFiles } from './render-host-bundle.js';
import type { BundleCerts, BundleFile } from './render-host-bundle.js';

export interface SystemdBundleInput {
  readonly spec: ClusterSpec;
  /** The spec's text: each host gets it with its host paths and etcd filled in, comments kept. */
  readonly specText: string;
  /** With `tls: auto`: the CA and each node's certificate, and its key when secrets are rendered. */
  readonly certs: BundleCerts | undefined;
  /**
   * With --with-secrets: the generated passwords (when the spec has pgrepl generate them), and the
   * agents' API token, which every host needs the same (a leader asks the others over the API to
   * promise not to promote while etcd is away, failsafe).
   */
  readonly generatedSecrets:
    { readonly superuser?: string; readonly replication?: string; readonly apiToken?: string } | undefined;
}

/** etcd's ports on each member's host (IANA's). */
const ETCD_CLIENT_PORT = 2379;
const ETCD_PEER_PORT = 2380;

/** A CA, a certificate and its key in `dir` (the layout of pgrepl's own), the pair named `name`. */
const tlsTrio = (dir: string, name: string) => ({ dir, files: tlsFilesIn(dir, name) });

/** Where a host keeps what the bundle installs. */
export function systemdPaths(cluster: string) {
  const etc = `/etc/pgrepl/${cluster}`;
  return {
    etc,
    spec: `${etc}/pgrepl.yaml`,
    etcdConf: `${etc}/etcd.conf.yml`,
    /** The member's TLS files (its node's certificate), owned by etcd's OS user. */
    etcdTls: tlsTrio(`${etc}/etcd-tls`, 'member'),
    /** The agent's etcd client certificate: its node's, owned by PostgreSQL's OS user. */
    agentTls: tlsTrio(`${etc}/agent-tls`, 'client'),
    agentEnv: `${etc}/agent.env`,
    stateDir: `/var/lib/pgrepl/${cluster}`,
    etcdData: `/var/lib/pgrepl-etcd/${cluster}`,
    agentUnit: `pgrepl-${cluster}-agent.service`,
    etcdUnit: `pgrepl-${cluster}-etcd.service`,
  };
}

const urlHost = (host: string) => (host.includes(':') ? `[${host}]` : host);

/**
 * The etcd members a bundle runs: the first three nodes of the spec, one per host (a majority of
 * three survives one host's loss); none when the spec names an etcd of its own.
 */
export function etcdMembers(spec: ClusterSpec): NodeSpec[] {
  if (spec.ha?.etcd) return [];
  const members = spec.nodes.slice(0, 3);
  const hosts = new Set(members.map((n) => n.host));
  if (hosts.size < members.length)
    throw new PgreplError(
      'E_USAGE',
      `etcd members need hosts of their own, but ${members.map((n) => `${n.name} (${n.host})`).join(', ')} share one; ` +
        'give each node its host, or list an etcd of your own under ha.etcd',
    );
  return members;
}

/**
 * `pgrepl render systemd`: one folder per host for machines run by systemd, where each node's agent
 * forms and runs the cluster (no `pgrepl up` anywhere): the agent's unit, an etcd member's unit and
 * config on the first three hosts (client and peer traffic over TLS with the cluster's CA and the
 * node's certificate, each client checked), the spec as that host reads it, the TLS files and
 * passwords it needs, an install.sh, and a README with the commands in order, in English and in
 * Portuguese. Pure: the same input gives the same files (golden-tested).
 */
export function renderSystemdBundle(i: SystemdBundleInput): BundleFile[] {
  const { spec } = i;
  const p = systemdPaths(spec.cluster);
  const members = etcdMembers(spec);
  const tls = spec.tls === 'auto' && i.certs !== undefined;
  const scheme = tls ? 'https' : 'http';
  const clientUrl = (n: NodeSpec) => `${scheme}://${urlHost(n.host)}:${ETCD_CLIENT_PORT}`;
  const peerUrl = (n: NodeSpec) => `${scheme}://${urlHost(n.host)}:${ETCD_PEER_PORT}`;
  const hostSpec = renderHostSpec(i, {
    stateDir: p.stateDir,
    etcd: members.map(clientUrl),
    etcdTls: tls && members.length > 0 ? p.agentTls.files : undefined,
  });
  const files: BundleFile[] = LANGS.map(({ lang, file }) => ({
    path: file,
    content: indexReadme(spec, members, lang),
    mode: 0o644,
  }));
  for (const node of spec.nodes) {
    const dir = node.name;
    const member = members.includes(node);
    files.push(
      ...tlsBundleFiles(dir, node, i.certs),
      { path: `${dir}/pgrepl.yaml`, content: hostSpec, mode: 0o644 },
      { path: `${dir}/${p.agentUnit}`, content: agentUnit(spec, node, member), mode: 0o644 },
      ...secretFiles(dir, i.generatedSecrets),
      ...(member
        ? [
            {
              path: `${dir}/etcd.conf.yml`,
              content: etcdConfig(spec, node, members, { clientUrl, peerUrl, tls }),
              mode: 0o644,
            },
            { path: `${dir}/${p.etcdUnit}`, content: etcdUnit(spec, node), mode: 0o644 },
          ]
        : []),
      {
        path: `${dir}/install.sh`,
        content: installScript(spec, node, { member, members, tls }),
        mode: 0o755,
      },
      ...LANGS.map(({ lang, file }) => ({
        path: `${dir}/${file}`,
        content: nodeReadme(spec, node, member, members, lang),
        mode: 0o644,
      })),
    );
  }
  return files;
}

/**
 * The spec as every host reads it: the state under /var/lib/pgrepl/<cluster>, data directories there
 * unless the spec gives absolute ones, and the bundle's etcd members with the agent's client
 * certificate (unless the spec names an etcd of its own). The same text on every host.
 */
function renderHostSpec(
  i: SystemdBundleInput,
  o: { stateDir: string; etcd: string[]; etcdTls: TlsFiles | undefined },
): string {
  const doc = parseDocument(i.specText);
  doc.setIn(['stateDir'], o.stateDir);
  const nodes = doc.getIn(['nodes']) as { items?: unknown[] } | undefined;
  (nodes?.items ?? []).forEach((_, n) => {
    const dataDir = doc.getIn(['nodes', n, 'dataDir']);
    if (typeof dataDir === 'string' && !isAbsolute(dataDir)) doc.deleteIn(['nodes', n, 'dataDir']);
  });
  if (o.etcd.length > 0) {
    doc.setIn(['ha', 'etcd'], doc.createNode(o.etcd, { flow: true }));
    if (o.etcdTls) doc.setIn(['ha', 'etcdTls'], doc.createNode(o.etcdTls, { flow: true }));
  } else if (!doc.hasIn(['ha'])) doc.setIn(['ha'], doc.createNode({}));
  doc.commentBefore = [
    ` Rendered by \`pgrepl render systemd\` for the hosts of cluster ${i.spec.cluster}: the same on each.`,
    ...(doc.commentBefore ? [doc.commentBefore] : []),
  ].join('\n');
  return doc.toString({ lineWidth: 0 });
}

function secretFiles(dir: string, s: SystemdBundleInput['generatedSecrets']): BundleFile[] {
  return [
    ...(s?.superuser
      ? [{ path: `${dir}/secrets/superuser.password`, content: `${s.superuser}\n`, mode: 0o600 }]
      : []),
    ...(s?.replication
      ? [{ path: `${dir}/secrets/replication.password`, content: `${s.replication}\n`, mode: 0o600 }]
      : []),
    ...(s?.apiToken ? [{ path: `${dir}/secrets/api-token`, content: `${s.apiToken}\n`, mode: 0o600 }] : []),
  ];
}

function agentUnit(spec: ClusterSpec, node: NodeSpec, member: boolean): string {
  const p = systemdPaths(spec.cluster);
  return `[Unit]
Description=pgrepl agent of node ${node.name} (cluster ${spec.cluster})
Documentation=https://github.com/pgrepl/pgrepl/blob/main/docs/automatic-failover.md
After=network-online.target${member ? ` ${p.etcdUnit}` : ''}
Wants=network-online.target

[Service]
Type=simple
User=postgres
Group=postgres
EnvironmentFile=-${p.agentEnv}
ExecStart=/usr/bin/env pgrepl -c ${p.spec} agent --node ${node.name}
# PostgreSQL and the fence watchdog must outlive a restart of the agent: it stops what it must itself
# (a leader's server before it gives up the key), and the watchdog fences a primary whose agent died.
KillMode=process
Restart=always
RestartSec=2
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
`;
}

function etcdUnit(spec: ClusterSpec, node: NodeSpec): string {
  const p = systemdPaths(spec.cluster);
  return `[Unit]
Description=etcd member ${node.name} of pgrepl cluster ${spec.cluster}
Documentation=https://etcd.io/docs/v3.4/op-guide/configuration/
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
User=etcd
Group=etcd
ExecStart=/usr/bin/etcd --config-file ${p.etcdConf}
Restart=always
RestartSec=2
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`;
}

/** etcd's YAML configuration (3.4) for one member: TLS for clients and peers, each side checked. */
function etcdConfig(
  spec: ClusterSpec,
  node: NodeSpec,
  members: readonly NodeSpec[],
  o: { clientUrl: (n: NodeSpec) => string; peerUrl: (n: NodeSpec) => string; tls: boolean },
): string {
  const p = systemdPaths(spec.cluster);
  // The fast profile's TTL of 1 s needs etcd to revoke leases on time: the same heartbeat and
  // election as the loopback etcd of `up --ha`.
  const fast = spec.ha?.profile === 'fast';
  const security = (what: string) =>
    o.tls
      ? [
          `${what}:`,
          `  cert-file: ${p.etcdTls.files.cert}`,
          `  key-file: ${p.etcdTls.files.key}`,
          `  trusted-ca-file: ${p.etcdTls.files.ca}`,
          '  client-cert-auth: true',
        ]
      : [];
  return [
    `# etcd member ${node.name} of pgrepl cluster ${spec.cluster}, rendered by \`pgrepl render systemd\`.`,
    `name: ${node.name}`,
    `data-dir: ${p.etcdData}`,
    `listen-client-urls: ${o.clientUrl(node)}`,
    `advertise-client-urls: ${o.clientUrl(node)}`,
    `listen-peer-urls: ${o.peerUrl(node)}`,
    `initial-advertise-peer-urls: ${o.peerUrl(node)}`,
    `initial-cluster: ${members.map((m) => `${m.name}=${o.peerUrl(m)}`).join(',')}`,
    `initial-cluster-token: pgrepl-${spec.cluster}`,
    'initial-cluster-state: new',
    `heartbeat-interval: ${fast ? 50 : 100}`,
    `election-timeout: ${fast ? 500 : 1000}`,
    // A member cut off campaigns again and again, each time with a higher term; without pre-vote,
    // when it is back, that term deposes the leader the others elected meanwhile, and etcd stops
    // answering for an election (long enough to fence a primary on the fast profile). etcd 3.5
    // turns it on by default; 3.4, Debian's, leaves it off.
    'pre-vote: true',
    'enable-v2: false',
    // The agents speak etcd's JSON gateway; from a configuration file etcd leaves it off unless told.
    'enable-grpc-gateway: true',
    ...security('client-transport-security'),
    ...security('peer-transport-security'),
    '',
  ].join('\n');
}

function installScript(
  spec: ClusterSpec,
  node: NodeSpec,
  o: { member: boolean; members: readonly NodeSpec[]; tls: boolean },
): string {
  const { member, members, tls } = o;
  const p = systemdPaths(spec.cluster);
  const own = [`tls/ca.crt`, `tls/${node.name}.crt`, `tls/${node.name}.key`];
  const lines = [
    '#!/usr/bin/env bash',
    `# Generated by pgrepl for node ${node.name} of cluster ${spec.cluster} (host ${node.host}). Run it there as root.`,
    '# It installs files and units and starts them; it stops at the first error and is safe to run again.',
    'set -euo pipefail',
    'cd "$(dirname "$0")"',
    'if [ "$(id -u)" != 0 ]; then echo "run install.sh as root" >&2; exit 1; fi',
    'command -v pgrepl >/dev/null || { echo "install pgrepl first (npm install -g pgrepl)" >&2; exit 1; }',
    'id postgres >/dev/null 2>&1 || { echo "no postgres OS user: install PostgreSQL first (apt-get install postgresql)" >&2; exit 1; }',
  ];
  if (tls)
    lines.push(
      `for f in ${own.join(' ')}; do`,
      '  if [ ! -s "$f" ]; then',
      `    echo "put $f here first: \\\`pgrepl render systemd --with-secrets\\\` includes the key" >&2; exit 1`,
      '  fi',
      'done',
    );
  const generated = [
    ...(spec.superuser.password.kind === 'generated' ? ['secrets/superuser.password'] : []),
    ...(spec.replication.password.kind === 'generated' ? ['secrets/replication.password'] : []),
  ];
  lines.push(
    `for f in ${[...generated, 'secrets/api-token'].join(' ')}; do`,
    '  if [ ! -s "$f" ]; then',
    '    echo "put $f here first: every host needs the same secrets (render systemd --with-secrets includes them)" >&2; exit 1',
    '  fi',
    'done',
  );
  if (member)
    lines.push(
      'if [ ! -x /usr/bin/etcd ]; then echo "install etcd first (apt-get install etcd-server)" >&2; exit 1; fi',
      '# Debian starts an etcd of its own on the same ports.',
      'if systemctl is-enabled --quiet etcd.service 2>/dev/null; then',
      '  echo "Debian\'s etcd.service would take ports 2379/2380: systemctl disable --now etcd.service, then run this again" >&2; exit 1',
      'fi',
      'id etcd >/dev/null 2>&1 || useradd --system --home-dir /var/lib/etcd --shell /usr/sbin/nologin etcd',
    );
  lines.push(
    '',
    `install -d -m 755 ${p.etc}`,
    `install -m 644 pgrepl.yaml ${p.spec}`,
    `install -d -m 700 -o postgres -g postgres ${p.stateDir}`,
  );
  if (tls)
    lines.push(
      `install -d -m 700 -o postgres -g postgres ${p.stateDir}/tls`,
      `install -m 600 -o postgres -g postgres ${own.join(' ')} ${p.stateDir}/tls/`,
    );
  // The agent's client certificate for the bundle's etcd: its node's own.
  if (tls && members.length > 0) lines.push(...installTls(node, 'postgres', p.agentTls));
  if (generated.length > 0)
    lines.push(
      `install -d -m 700 -o postgres -g postgres ${p.stateDir}/secrets`,
      `install -m 600 -o postgres -g postgres ${generated.join(' ')} ${p.stateDir}/secrets/`,
    );
  lines.push(
    `install -d -m 700 -o postgres -g postgres ${p.stateDir}/ha`,
    `install -m 600 -o postgres -g postgres secrets/api-token ${p.stateDir}/ha/api-token`,
  );
  if (member) {
    lines.push(
      `install -d -m 700 -o etcd -g etcd ${p.etcdData}`,
      `install -m 644 etcd.conf.yml ${p.etcdConf}`,
    );
    if (tls) lines.push(...installTls(node, 'etcd', p.etcdTls));
    lines.push(`install -m 644 ${p.etcdUnit} /etc/systemd/system/${p.etcdUnit}`);
  }
  lines.push(
    `install -m 644 ${p.agentUnit} /etc/systemd/system/${p.agentUnit}`,
    'systemctl daemon-reload',
    // A member waits for a majority of its peers: --no-block, or the first host would wait here.
    ...(member ? [`systemctl enable --now --no-block ${p.etcdUnit}`] : []),
    `systemctl enable --now --no-block ${p.agentUnit}`,
    `echo "${node.name}: ${member ? 'etcd member and ' : ''}agent installed and started; follow it with: journalctl -fu ${p.agentUnit}"`,
    `echo "from any host: sudo -u postgres pgrepl -c ${p.spec} status"`,
    '',
  );
  return lines.join('\n');
}

/** install.sh's lines that put the bundle's CA and node certificate and key where `to` names them, owned by `user`. */
function installTls(node: NodeSpec, user: string, to: ReturnType<typeof tlsTrio>): string[] {
  const as = `-o ${user} -g ${user}`;
  return [
    `install -d -m 700 ${as} ${to.dir}`,
    `install -m 600 ${as} tls/ca.crt ${to.files.ca}`,
    `install -m 600 ${as} tls/${node.name}.crt ${to.files.cert}`,
    `install -m 600 ${as} tls/${node.name}.key ${to.files.key}`,
  ];
}

/** The READMEs' sentences; the commands are the same in both languages. */
const TEXT = {
  en: {
    other: 'Em português: README.pt-BR.md.',
    title: (c: string) => `# Cluster ${c} on hosts run by systemd: one folder per host`,
    how: [
      'Each node runs an agent (a systemd unit) that forms and then runs the cluster with the others:',
      'nobody runs `pgrepl up`. The agents agree through etcd: one member on each of the first three',
      'hosts. On every host, install PostgreSQL (its `postgres` OS user), pgrepl (`npm install -g',
      'pgrepl`) and, on the etcd hosts, etcd (`apt-get install etcd-server`, then `systemctl disable',
      '--now etcd`: its own unit takes the same ports). Then copy each folder to its host and run',
      '`install.sh` there as root, in any order: the etcd members wait for each other, the first node',
      'of the spec initializes the cluster, and the others clone from it once it leads.',
    ],
    members: (names: string) => `etcd members: ${names}.`,
    ownEtcd: 'etcd: the one the spec names (ha.etcd); no member is installed.',
    check: 'Then, from any host:',
    node: (n: NodeSpec, c: string) => `# ${n.name} of cluster ${c}, on ${n.host}`,
    run: 'As root on this host:',
    member: 'This host also runs an etcd member.',
    follow: 'Follow the agent, and see the cluster:',
    files: 'Installed: the spec in /etc/pgrepl, the state (TLS files, passwords, data) in /var/lib/pgrepl.',
    secrets:
      "tls/ and secrets/ hold this node's key and the cluster's passwords only with `render systemd --with-secrets`; otherwise copy them from the state dir of the machine that rendered the bundle.",
  },
  'pt-BR': {
    other: 'In English: README.md.',
    title: (c: string) => `# Cluster ${c} em hosts com systemd: uma pasta por host`,
    how: [
      'Cada nó roda um agente (uma unit do systemd) que forma e depois opera o cluster junto com os',
      'outros: ninguém roda `pgrepl up`. Os agentes se coordenam pelo etcd: um membro em cada um dos',
      'três primeiros hosts. Em cada host, instale o PostgreSQL (o usuário `postgres` do sistema), o',
      'pgrepl (`npm install -g pgrepl`) e, nos hosts do etcd, o etcd (`apt-get install etcd-server`,',
      'depois `systemctl disable --now etcd`: a unit dele usa as mesmas portas). Depois copie cada',
      'pasta para o seu host e rode o `install.sh` lá como root, em qualquer ordem: os membros do etcd',
      'esperam uns pelos outros, o primeiro nó do spec inicializa o cluster e os outros se clonam dele',
      'assim que ele lidera.',
    ],
    members: (names: string) => `Membros do etcd: ${names}.`,
    ownEtcd: 'etcd: o que o spec indica (ha.etcd); nenhum membro é instalado.',
    check: 'Depois, de qualquer host:',
    node: (n: NodeSpec, c: string) => `# ${n.name} do cluster ${c}, em ${n.host}`,
    run: 'Como root neste host:',
    member: 'Este host também roda um membro do etcd.',
    follow: 'Acompanhe o agente e veja o cluster:',
    files: 'Instalado: o spec em /etc/pgrepl, o estado (arquivos TLS, senhas, dados) em /var/lib/pgrepl.',
    secrets:
      'tls/ e secrets/ só trazem a chave deste nó, as senhas do cluster e o token da API dos agentes com `render systemd --with-secrets`; sem isso, copie-os do diretório de estado da máquina que gerou o pacote (secrets/, ha/api-token).',
  },
};
type Lang = keyof typeof TEXT;
/** The READMEs of a bundle, one per language. */
export const README_LANGS: readonly { lang: 'en' | 'pt-BR'; file: string }[] = [
  { lang: 'en', file: 'README.md' },
  { lang: 'pt-BR', file: 'README.pt-BR.md' },
];
const LANGS = README_LANGS;

/** What an agents' bundle's top README says, in one language. */
export interface IndexText {
  readonly other: string;
  readonly title: (cluster: string) => string;
  readonly how: readonly string[];
  readonly members: (names: string) => string;
  readonly ownEtcd: string;
  readonly check: string;
}

/** The top README of a bundle whose agents form the cluster: the folders, the members, `command`. */
export function agentsIndexReadme(
  spec: ClusterSpec,
  members: readonly NodeSpec[],
  t: IndexText,
  command: string,
): string {
  return [
    t.title(spec.cluster),
    '',
    t.other,
    '',
    ...t.how,
    '',
    ...spec.nodes.map(
      (n, k) => `${k + 1}. \`${n.name}/\` → ${n.host}${members.includes(n) ? ' (etcd)' : ''}`,
    ),
    '',
    members.length > 0 ? t.members(members.map((m) => m.name).join(', ')) : t.ownEtcd,
    '',
    t.check,
    '',
    '```sh',
    command,
    '```',
    '',
  ].join('\n');
}

const indexReadme = (spec: ClusterSpec, members: readonly NodeSpec[], lang: Lang) =>
  agentsIndexReadme(
    spec,
    members,
    TEXT[lang],
    `sudo -u postgres pgrepl -c ${systemdPaths(spec.cluster).spec} status`,
  );

function nodeReadme(
  spec: ClusterSpec,
  node: NodeSpec,
  member: boolean,
  members: readonly NodeSpec[],
  lang: Lang,
): string {
  const t = TEXT[lang];
  const p = systemdPaths(spec.cluster);
  return [
    t.node(node, spec.cluster),
    '',
    t.other,
    '',
    ...(member ? [t.member, ''] : []),
    t.run,
    '',
    '```sh',
    './install.sh',
    '```',
    '',
    t.follow,
    '',
    '```sh',
    `journalctl -fu ${p.agentUnit}`,
    `sudo -u postgres pgrepl -c ${p.spec} status`,
    '```',
    '',
    t.files,
    t.secrets,
    '',
    members.length > 0 ? t.members(members.map((m) => m.name).join(', ')) : t.ownEtcd,
    '',
  ].join('\n');
}
