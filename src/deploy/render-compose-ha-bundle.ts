import { stringify } from 'yaml';
import type { ClusterSpec, NodeSpec } from '../cluster-spec/cluster-spec.js';
import type { BundleFile } from './render-host-bundle.js';
import {
  README_LANGS,
  agentsIndexReadme,
  etcdMembers,
  renderSystemdBundle,
  systemdPaths,
} from './render-systemd-bundle.js';
import type { SystemdBundleInput } from './render-systemd-bundle.js';

export interface ComposeHaBundleInput extends SystemdBundleInput {
  /** What the image installs with npm: this pgrepl's name and version, or a tarball's path. */
  readonly pgrepl: string;
  /** The PostgreSQL major version the image installs (Debian's package). */
  readonly pgMajor: number;
}

/** Where each service finds its node's folder inside the container. */
const BUNDLE = '/bundle';
const ENTRYPOINT = 'compose-entrypoint.sh';

/**
 * `pgrepl render compose --ha`: a folder per node whose Compose file runs that node's agent (and,
 * on the first three, an etcd member) in containers, as `render systemd` runs them under systemd:
 * the same files, and each container's entrypoint runs that bundle's install.sh, unchanged, then
 * what the unit of its service says (its ExecStart, as its User). The agents form the cluster: no
 * one runs `pgrepl up`. Pure and golden-tested; the entrypoint is tested on the lab's hosts.
 */
export function renderComposeHaBundle(i: ComposeHaBundleInput): BundleFile[] {
  const { spec } = i;
  const members = etcdMembers(spec);
  // Its own READMEs replace render systemd's, which say to run install.sh by hand.
  const readme = (path: string) => LANGS.some(({ file }) => path === file || path.endsWith(`/${file}`));
  const files = renderSystemdBundle(i).filter((f) => !readme(f.path));
  files.push(
    ...LANGS.map(({ lang, file }) => ({
      path: file,
      content: indexReadme(spec, members, lang),
      mode: 0o644,
    })),
  );
  for (const node of spec.nodes) {
    const dir = node.name;
    const member = members.includes(node);
    files.push(
      { path: `${dir}/compose.yaml`, content: composeFile(spec, node, member), mode: 0o644 },
      { path: `${dir}/Dockerfile`, content: dockerfile(i), mode: 0o644 },
      { path: `${dir}/${ENTRYPOINT}`, content: entrypoint(spec, node), mode: 0o755 },
      ...LANGS.map(({ lang, file }) => ({
        path: `${dir}/${file}`,
        content: nodeReadme(spec, node, member, lang),
        mode: 0o644,
      })),
    );
  }
  return files;
}

const imageOf = (spec: ClusterSpec) => `pgrepl-${spec.cluster}:local`;

function composeFile(spec: ClusterSpec, node: NodeSpec, member: boolean): string {
  const p = systemdPaths(spec.cluster);
  // Host networking: every node, member and client reaches it at the address the spec gives.
  // `init`: the agent starts PostgreSQL detached; an init as PID 1 reaps what it leaves behind.
  const service = (unit: 'agent' | 'etcd', volume: string, at: string) => ({
    build: '.',
    image: imageOf(spec),
    entrypoint: [`${BUNDLE}/${ENTRYPOINT}`, unit],
    network_mode: 'host',
    init: true,
    restart: 'unless-stopped',
    volumes: [`.:${BUNDLE}:ro`, `${volume}:${at}`],
  });
  const doc = {
    services: {
      ...(member ? { etcd: service('etcd', 'etcd-data', p.etcdData) } : {}),
      agent: {
        ...service('agent', 'state', p.stateDir),
        // A leader stops its server cleanly before it gives up the key.
        stop_grace_period: '60s',
        ...(member ? { depends_on: ['etcd'] } : {}),
      },
    },
    volumes: { ...(member ? { 'etcd-data': {} } : {}), state: {} },
  };
  return (
    `# ${node.name} of pgrepl cluster ${spec.cluster}, on ${node.host}: docker compose up -d --build\n` +
    stringify(doc, { lineWidth: 0 })
  );
}

function dockerfile(i: ComposeHaBundleInput): string {
  const pg = `postgresql-${i.pgMajor}`;
  return `# The image of both services of compose.yaml: PostgreSQL ${i.pgMajor}, etcd and pgrepl on Node.js 20.
FROM node:20-bookworm-slim
# Debian's PostgreSQL without its own cluster: the agent makes the node's.
RUN mkdir -p /etc/postgresql-common/createcluster.d \\
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/pgrepl.conf \\
 && apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pg} etcd-server ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
# install.sh asks systemd about Debian's own etcd unit and starts its units: in a container the
# entrypoint runs them, and systemctl does nothing.
RUN printf '#!/bin/sh\\ncase "$1" in is-enabled|is-active) exit 1;; esac\\nexit 0\\n' > /usr/local/bin/systemctl \\
 && chmod 755 /usr/local/bin/systemctl
ARG PGREPL=${i.pgrepl}
RUN npm install -g "$PGREPL"
`;
}

function entrypoint(spec: ClusterSpec, node: NodeSpec): string {
  const p = systemdPaths(spec.cluster);
  return `#!/bin/sh
# The entrypoint of both services of compose.yaml for ${node.name} of cluster ${spec.cluster}, in this
# folder (mounted at ${BUNDLE}): installs it with its install.sh, unchanged (safe to run again), then
# runs what the unit of the service says, its ExecStart as its User, as systemd would:
# \`${ENTRYPOINT} agent\` or \`${ENTRYPOINT} etcd\`.
set -eu
cd "$(dirname "$0")"
case "\${1:-}" in
  agent) unit=${p.agentUnit} ;;
  etcd) unit=${p.etcdUnit} ;;
  *) echo "usage: ${ENTRYPOINT} agent|etcd" >&2; exit 2 ;;
esac
./install.sh
user=$(sed -n 's/^User=//p' "$unit")
command=$(sed -n 's/^ExecStart=//p' "$unit")
home=$(getent passwd "$user" | cut -d: -f6)
# The environment systemd gives a unit's User; the ExecStart lines hold no quotes.
exec env -i PATH="$PATH" HOME="$home" USER="$user" LOGNAME="$user" \\
  setpriv --reuid="$user" --regid="$user" --init-groups -- $command
`;
}

/** The READMEs' sentences; the commands are the same in both languages. */
const TEXT = {
  en: {
    other: 'Em português: README.pt-BR.md.',
    title: (c: string) => `# Cluster ${c} on Docker Compose hosts, run by its agents: one folder per host`,
    how: [
      "Each node's folder runs its agent, with PostgreSQL, in a container; the first three also run an",
      'etcd member. The agents form and then run the cluster: nobody runs `pgrepl up`. Copy each folder',
      'to its host and start it there, in any order: the etcd members wait for each other, the first',
      'node of the spec initializes the cluster, and the others clone from it once it leads. Every',
      "service uses the host's network, at the address the spec gives each node.",
    ],
    members: (names: string) => `etcd members: ${names}.`,
    ownEtcd: 'etcd: the one the spec names (ha.etcd); no member runs here.',
    check: "Then, in any host's folder:",
    node: (n: NodeSpec, c: string) => `# ${n.name} of cluster ${c}, on ${n.host}`,
    run: 'On this host, in this folder:',
    member: 'This host also runs an etcd member (the `etcd` service).',
    files: [
      "Each container's entrypoint installs this folder with `install.sh` (the same as `render systemd`'s)",
      "and runs what the service's unit says. Data, TLS files and passwords live in the `state` volume.",
      "tls/ and secrets/ hold this node's key, the cluster's passwords and the agents' API token only with",
      '`render compose --ha --with-secrets`; otherwise copy them from the state dir of the machine that',
      'rendered the bundle. Stopping the agent service stops its PostgreSQL with it (a leader first',
      'stops its server cleanly and gives up the key).',
    ],
  },
  'pt-BR': {
    other: 'In English: README.md.',
    title: (c: string) =>
      `# Cluster ${c} em hosts com Docker Compose, operado pelos agentes: uma pasta por host`,
    how: [
      'A pasta de cada nó roda o agente dele, com o PostgreSQL, num contêiner; as três primeiras também',
      'rodam um membro do etcd. Os agentes formam e depois operam o cluster: ninguém roda `pgrepl up`.',
      'Copie cada pasta para o seu host e suba-a lá, em qualquer ordem: os membros do etcd esperam uns',
      'pelos outros, o primeiro nó do spec inicializa o cluster e os outros se clonam dele assim que',
      'ele lidera. Todos os serviços usam a rede do host, no endereço que o spec dá a cada nó.',
    ],
    members: (names: string) => `Membros do etcd: ${names}.`,
    ownEtcd: 'etcd: o que o spec indica (ha.etcd); nenhum membro roda aqui.',
    check: 'Depois, na pasta de qualquer host:',
    node: (n: NodeSpec, c: string) => `# ${n.name} do cluster ${c}, em ${n.host}`,
    run: 'Neste host, nesta pasta:',
    member: 'Este host também roda um membro do etcd (o serviço `etcd`).',
    files: [
      'O entrypoint de cada contêiner instala esta pasta com o `install.sh` (o mesmo do `render systemd`)',
      'e roda o que a unit do serviço diz. Dados, arquivos TLS e senhas ficam no volume `state`.',
      'tls/ e secrets/ só trazem a chave deste nó, as senhas do cluster e o token da API dos agentes com',
      '`render compose --ha --with-secrets`; sem isso, copie-os do diretório de estado da máquina que',
      'gerou o pacote. Parar o serviço do agente para o PostgreSQL junto (um líder antes para o servidor',
      'de forma limpa e larga a chave).',
    ],
  },
};
type Lang = keyof typeof TEXT;
const LANGS = README_LANGS;

const statusCommand = (spec: ClusterSpec) =>
  `docker compose exec -u postgres agent pgrepl -c ${systemdPaths(spec.cluster).spec} status`;

const indexReadme = (spec: ClusterSpec, members: readonly NodeSpec[], lang: Lang) =>
  agentsIndexReadme(spec, members, TEXT[lang], statusCommand(spec));

function nodeReadme(spec: ClusterSpec, node: NodeSpec, member: boolean, lang: Lang): string {
  const t = TEXT[lang];
  return [
    t.node(node, spec.cluster),
    '',
    t.other,
    '',
    ...(member ? [t.member, ''] : []),
    t.run,
    '',
    '```sh',
    'docker compose up -d --build',
    'docker compose logs -f agent',
    statusCommand(spec),
    '```',
    '',
    ...t.files,
    '',
  ].join('\n');
}
