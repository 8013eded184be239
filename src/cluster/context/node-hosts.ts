import { dirname, join } from 'node:path';
import type { CommandRunner } from '../../postgres/command-runner.js';
import { isLocalHost } from '../../postgres/local-address.js';
import { sourceAddressFor } from '../../postgres/source-address.js';
import type { ClusterSpec, NodeSpec, TlsFiles } from '../../cluster-spec/cluster-spec.js';
import type { NodeHostFacts } from '../decide/render-node-config.js';
import { localPgbackrestPaths, pgbackrestPathsBeside } from '../../cluster-spec/backup-paths.js';

/** What is true of the machine a node runs on, as the rest of pgrepl needs it. */
export interface NodeHost extends NodeHostFacts {
  /** Its host is this machine: its files and processes are this command's to read and touch. */
  readonly local: boolean;
}

/**
 * On a host of its own, a node keeps the passfile its walreceiver reads beside its data directory
 * (not in it: a clone or rewind would copy or drop it), as `render conf`'s setup.sh writes it.
 */
export const passfileBesideDataDir = (node: NodeSpec) =>
  join(dirname(node.dataDir), `${node.name}-replication.pgpass`);

/** Where `tls: auto` keeps the CA and the nodes' certificates on the machine that runs `up`. */
export const autoTlsDir = (stateDir: string) => join(stateDir, 'tls');

/** The CA certificate of `tls: auto` on the machine that runs `up`. */
export const autoCaFile = (stateDir: string) => join(autoTlsDir(stateDir), 'ca.crt');

/** A node's TLS files in `dir`: the CA's certificate, and its own certificate and key. */
export const tlsFilesIn = (dir: string, node: string): TlsFiles => ({
  ca: join(dir, 'ca.crt'),
  cert: join(dir, `${node}.crt`),
  key: join(dir, `${node}.key`),
});

/** On a host of its own, a node keeps its TLS files beside its data directory, like its passfile. */
const tlsBesideDataDir = (node: NodeSpec) =>
  tlsFilesIn(join(dirname(node.dataDir), `${node.name}-tls`), node.name);

/** A node's TLS files, on this machine (`local`) or on a host of its own. */
function tlsOf(spec: ClusterSpec, node: NodeSpec, local: boolean): TlsFiles | undefined {
  if (spec.tls === 'off') return undefined;
  if (spec.tls === 'files') return node.tls;
  return local ? tlsFilesIn(autoTlsDir(spec.stateDir), node.name) : tlsBesideDataDir(node);
}

/**
 * Each node's host facts. A node of this machine connects to the others from the address the
 * routing table picks for them (on one machine every 127.x is reached from 127.0.0.1), and reads
 * the replication password from the state dir. A node elsewhere connects from its own address and
 * keeps its passfile beside its data directory.
 */
export async function resolveNodeHosts(
  spec: ClusterSpec,
  statePassfile: string,
  runner: CommandRunner,
): Promise<ReadonlyMap<string, NodeHost>> {
  // One route look-up per address, not per node: every command pays for them before its first step.
  const routes = new Map<string, Promise<string>>();
  const routeFrom = (host: string) => {
    const known = routes.get(host) ?? sourceAddressFor(host, runner);
    routes.set(host, known);
    return known;
  };
  const hosts = await Promise.all(
    spec.nodes.map(async (node): Promise<[string, NodeHost]> => {
      if (!(await isLocalHost(node.host)))
        return [
          node.name,
          {
            local: false,
            connectsFrom: node.host,
            replicationPassfile: passfileBesideDataDir(node),
            tls: tlsOf(spec, node, false),
            pgbackrest: pgbackrestPathsBeside(node),
          },
        ];
      const connectsFrom = await routeFrom(node.host);
      return [
        node.name,
        {
          local: true,
          connectsFrom,
          replicationPassfile: statePassfile,
          tls: tlsOf(spec, node, true),
          pgbackrest: localPgbackrestPaths(spec.stateDir, node.name),
        },
      ];
    }),
  );
  return new Map(hosts);
}

/** Every node on a host of its own, as `render conf` and `render compose` lay them out. */
export function separateHosts(spec: ClusterSpec): Record<string, NodeHostFacts> {
  return Object.fromEntries(
    spec.nodes.map((n) => [
      n.name,
      {
        connectsFrom: n.host,
        replicationPassfile: passfileBesideDataDir(n),
        tls: tlsOf(spec, n, false),
        pgbackrest: pgbackrestPathsBeside(n),
      },
    ]),
  );
}
