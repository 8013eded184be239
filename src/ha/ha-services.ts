import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PgreplError } from '../errors.js';
import type { ClusterSpec, HaSpec, NodeSpec } from '../cluster-spec/cluster-spec.js';
import { defaultHa } from '../cluster-spec/resolve-ha.js';
import { findEtcd, localEtcdArgs, localEtcdUrl, waitEtcdHealthy } from '../dcs/local-etcd.js';
import type { LocalEtcd } from '../dcs/local-etcd.js';
import { etcdClient } from '../dcs/etcd-client.js';
import type { TlsMaterial } from '../dcs/http-json.js';
import { autoCaFile } from '../cluster/context/node-hosts.js';
import type { EtcdClientOptions } from '../dcs/etcd-client.js';
import { resolveSecret } from '../cluster/context/resolve-secret.js';
import { haStore } from '../dcs/ha-store.js';
import { ensureApiToken } from './api-token.js';
import { livePid, spawnRecorded, stopRecorded } from './pid-file.js';
import { LONG_RUNNING_NODE_FLAGS } from '../package-files.js';

/** Where HA keeps its files on this machine: `<stateDir>/ha/`. */
export function haPaths(stateDir: string) {
  const root = join(stateDir, 'ha');
  const agentsDir = join(root, 'agents');
  const agentDir = (node: string) => join(agentsDir, node);
  return {
    root,
    /** Written by `up --ha`: HA is on for this cluster even without an `ha` section in the spec. */
    record: join(root, 'ha.json'),
    etcdDir: join(root, 'etcd'),
    etcdPid: join(root, 'etcd.pid'),
    etcdLog: join(root, 'etcd.log'),
    agentsDir,
    agentDir,
    agentPid: (node: string) => join(agentDir(node), 'agent.pid'),
    agentLog: (node: string) => join(agentDir(node), 'agent.log'),
    fenceFile: (node: string) => join(agentDir(node), 'fence.json'),
    watchdogPid: (node: string) => join(agentDir(node), 'fence-watchdog.pid'),
    watchdogLog: (node: string) => join(agentDir(node), 'fence-watchdog.log'),
    /** The bearer token of the agents' mutating endpoints (0600). */
    apiToken: join(root, 'api-token'),
  };
}

/** What `up --ha` recorded: the local etcd it runs, when the spec names none. */
interface HaRecord {
  readonly localEtcd: LocalEtcd | null;
}

function readRecord(stateDir: string): HaRecord | null {
  try {
    return JSON.parse(readFileSync(haPaths(stateDir).record, 'utf8')) as HaRecord;
  } catch {
    return null;
  }
}

/** The cluster's HA settings: the spec's `ha`, else the default profile when `up --ha` turned HA on. */
export function effectiveHa(spec: ClusterSpec): HaSpec | undefined {
  if (spec.ha) return spec.ha;
  if (!readRecord(spec.stateDir)) return undefined;
  return defaultHa();
}

/** How an agent or command reaches etcd: its endpoints, the TLS files' contents, the etcd user. */
export type EtcdConnection = Pick<EtcdClientOptions, 'endpoints' | 'tls' | 'auth'>;

/**
 * The spec's way to etcd, files read and password resolved: `etcdClient({ ...etcdConnection(…),
 * requestTimeoutMs })`. A file that cannot be read fails here, with its key in the spec.
 */
export function etcdConnection(
  spec: ClusterSpec,
  ha: HaSpec,
  env: Readonly<Record<string, string | undefined>> = {},
): EtcdConnection {
  const read = (path: string, key: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new PgreplError('E_ETCD', `ha.etcdTls.${key}: cannot read ${path} (${(err as Error).message})`, {
        cause: err,
      });
    }
  };
  const t = ha.etcdTls;
  const u = ha.etcdUser;
  return {
    endpoints: etcdEndpoints(spec, ha, env),
    ...(t
      ? {
          tls: {
            ca: read(t.ca, 'ca'),
            ...(t.cert ? { cert: read(t.cert, 'cert') } : {}),
            ...(t.key ? { key: read(t.key, 'key') } : {}),
          },
        }
      : {}),
    ...(u
      ? {
          auth: {
            user: u.name,
            password: resolveSecret(u.password, 'etcd user', { env, create: false, runAs: undefined }) ?? '',
          },
        }
      : {}),
  };
}

/**
 * The etcd endpoints an agent or command uses: PGREPL_ETCD_ENDPOINTS (comma-separated: one host's
 * own order, or a proxy), else the spec's, else the local etcd `up --ha` runs.
 */
export function etcdEndpoints(
  spec: ClusterSpec,
  ha: HaSpec,
  env: Readonly<Record<string, string | undefined>> = {},
): string[] {
  const given = env['PGREPL_ETCD_ENDPOINTS']
    ?.split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (given && given.length > 0) return given;
  if (ha.etcd) return [...ha.etcd];
  const local = readRecord(spec.stateDir)?.localEtcd;
  if (!local)
    throw new PgreplError(
      'E_ETCD',
      `cluster ${spec.cluster} has no etcd: list one under ha.etcd, or run \`pgrepl up --ha\` to run one on loopback`,
    );
  return [localEtcdUrl(local)];
}

/** Where an agent's HTTP API listens: its node's host, at the node's port plus the offset. */
export const agentApiAddress = (node: NodeSpec, ha: HaSpec) => ({
  host: node.host,
  port: node.port + ha.apiPortOffset,
});

/** An agent's API URL: https:// when the cluster has TLS (the agent serves its node's certificate). */
export const agentApiUrl = (spec: Pick<ClusterSpec, 'tls'>, node: NodeSpec, ha: HaSpec) => {
  const a = agentApiAddress(node, ha);
  return `${spec.tls === 'off' ? 'http' : 'https'}://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
};

/**
 * What a request to an agent's https:// API checks the agent's certificate against: the cluster's
 * CA on this machine, read at each call (a renewed CA counts at once). undefined without TLS.
 */
export function agentApiTls(spec: ClusterSpec): TlsMaterial | undefined {
  if (spec.tls === 'off') return undefined;
  const ca = spec.tls === 'files' ? spec.nodes[0]?.tls?.ca : autoCaFile(spec.stateDir);
  if (ca === undefined) return undefined;
  try {
    return { ca: readFileSync(ca) };
  } catch (err) {
    throw new PgreplError(
      'E_SECRET',
      `cannot read the cluster's CA at ${ca} (${(err as Error).message}): the agents' API is https:// and checked against it; \`pgrepl up\` makes it with tls: auto`,
      { cause: err },
    );
  }
}

/**
 * Makes sure the single-member etcd of `up --ha` runs (started on two free loopback ports the first
 * time, on the same ones after), and records it. Returns its URL.
 */
export async function ensureLocalEtcd(
  spec: ClusterSpec,
  env: Readonly<Record<string, string | undefined>>,
  freePort: () => Promise<number>,
): Promise<string> {
  const p = haPaths(spec.stateDir);
  mkdirSync(p.root, { recursive: true, mode: 0o700 });
  let local = readRecord(spec.stateDir)?.localEtcd ?? null;
  if (!local) {
    // Not a port the spec gives a node or its agent's API: free now, but theirs once they start.
    const offset = (spec.ha ?? defaultHa()).apiPortOffset;
    const taken = new Set(spec.nodes.flatMap((n) => [n.port, n.port + offset]));
    const pick = async () => {
      let port = await freePort();
      while (taken.has(port)) port = await freePort();
      taken.add(port);
      return port;
    };
    const clientPort = await pick();
    const peerPort = await pick();
    local = { dataDir: p.etcdDir, clientPort, peerPort };
    writeFileSync(p.record, `${JSON.stringify({ localEtcd: local } satisfies HaRecord, null, 2)}\n`, {
      mode: 0o600,
    });
  }
  const url = localEtcdUrl(local);
  if (livePid(p.etcdPid) === null) {
    const bin = findEtcd(env);
    spawnRecorded(bin, localEtcdArgs(local), p.etcdLog, p.etcdPid, spec.stateDir);
  }
  await waitEtcdHealthy(url, 20_000);
  return url;
}

/** Records that HA is on with the spec's own etcd (no local one). */
export function recordHaOn(spec: ClusterSpec): void {
  const p = haPaths(spec.stateDir);
  mkdirSync(p.root, { recursive: true, mode: 0o700 });
  if (!existsSync(p.record))
    writeFileSync(p.record, `${JSON.stringify({ localEtcd: null } satisfies HaRecord)}\n`, { mode: 0o600 });
}

/**
 * Starts `pgrepl agent --node N` in the background for each node that does not have one running,
 * with its log under the state dir; returns the PIDs by node.
 */
export function ensureAgents(
  spec: ClusterSpec,
  nodes: readonly NodeSpec[],
  o: { cli: string; cwd: string; logFormat: 'human' | 'json' },
): Record<string, number> {
  const p = haPaths(spec.stateDir);
  ensureApiToken(p.apiToken);
  const pids: Record<string, number> = {};
  for (const node of nodes) {
    mkdirSync(p.agentDir(node.name), { recursive: true, mode: 0o700 });
    const running = livePid(p.agentPid(node.name));
    if (running !== null) {
      pids[node.name] = running;
      continue;
    }
    const specArgs = existsSync(spec.source) ? ['-c', spec.source] : [];
    pids[node.name] = spawnRecorded(
      process.execPath,
      [
        ...LONG_RUNNING_NODE_FLAGS,
        o.cli,
        ...specArgs,
        '--log-format',
        o.logFormat,
        'agent',
        '--node',
        node.name,
      ],
      p.agentLog(node.name),
      p.agentPid(node.name),
      o.cwd,
    );
  }
  return pids;
}

/** The PID of `node`'s agent on this machine, while it runs. */
export const agentPid = (spec: ClusterSpec, node: string) => livePid(haPaths(spec.stateDir).agentPid(node));

/**
 * Stops the agents of this machine with SIGTERM: the replicas' first, so that none of them races for
 * the key the leader's agent then gives up (after stopping its server). Returns who was stopped.
 */
export async function stopAgents(spec: ClusterSpec, leader: string | null): Promise<string[]> {
  const p = haPaths(spec.stateDir);
  const order = [...spec.nodes].sort((a, b) => Number(a.name === leader) - Number(b.name === leader));
  const stopped: string[] = [];
  for (const n of order) if (await stopRecorded(p.agentPid(n.name), 'SIGTERM', 20_000)) stopped.push(n.name);
  // A watchdog whose agent left cleanly has ended; one left armed by a killed agent is stopped here.
  for (const n of spec.nodes) await stopRecorded(p.watchdogPid(n.name), 'SIGTERM', 2000);
  return stopped;
}

/** Who holds the leader key now, as etcd says within a second; null when no one does or etcd is silent. */
export async function currentLeader(spec: ClusterSpec, ha: HaSpec): Promise<string | null> {
  try {
    const etcd = etcdClient({ ...etcdConnection(spec, ha), requestTimeoutMs: 1000 });
    return (await haStore(etcd, spec.cluster).read()).view.leader?.node ?? null;
  } catch {
    return null;
  }
}

/** Stops the local etcd of `up --ha`, if it runs. */
export const stopLocalEtcd = (spec: ClusterSpec) =>
  stopRecorded(haPaths(spec.stateDir).etcdPid, 'SIGTERM', 10_000);
