import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findEtcd } from '../../src/dcs/local-etcd.js';
import { waitUntil } from './test-cluster.js';
import type { TestCluster } from './test-cluster.js';

/** Whether this machine has an etcd binary: HA suites skip without one (apt-get install etcd-server). */
export const haveEtcd = (() => {
  try {
    findEtcd(process.env);
    return true;
  } catch {
    return false;
  }
})();

/** The agent API's port is the node's port + this (the spec's default apiPortOffset). */
export const API_OFFSET = 1000;

/** What an agent's /status says, as far as the tests read it. */
export interface AgentStatus {
  node: string;
  pid: number;
  decision: string | null;
  reason: string | null;
  leader: { node: string; term: number; ready: boolean } | null;
  server: { kind: string; streaming?: boolean } | null;
}

/** The agents of a test cluster started with `up --ha`: their PIDs, their APIs, their logs. */
export function haAgents(c: () => TestCluster, nodes: readonly string[]) {
  const dir = (name: string) => join(c().base, 'state', 'ha', 'agents', name);
  const pidIn = (file: string) => (JSON.parse(readFileSync(file, 'utf8')) as { pid: number }).pid;
  const api = (name: string, path: string) => `http://127.0.0.1:${c().port(name) + API_OFFSET}${path}`;

  const status = async (name: string): Promise<AgentStatus | null> => {
    try {
      const res = await fetch(api(name, '/status'), { signal: AbortSignal.timeout(1000) });
      return (await res.json()) as AgentStatus;
    } catch {
      return null;
    }
  };

  /** The end of every agent's logs, for a failure's message. */
  const logs = () =>
    nodes
      .flatMap((n) =>
        ['agent.log', 'hand-agent.log', 'fence-watchdog.log'].map((f) => {
          try {
            const lines = readFileSync(join(dir(n), f), 'utf8')
              .trimEnd()
              .split('\n')
              .slice(-12);
            return `--- ${n}/${f}\n${lines.join('\n')}`;
          } catch {
            return '';
          }
        }),
      )
      .filter((x) => x !== '')
      .join('\n');

  /** waitUntil, with the agents' logs in the error. */
  const waitFor = async (cond: () => boolean | Promise<boolean>, ms: number, what: string) => {
    try {
      await waitUntil(cond, ms, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${logs()}`, { cause: err });
    }
  };

  /** The node every live agent agrees leads, once its server is primary and the rest stream from it. */
  const settled = async (timeoutMs = 60_000): Promise<string> => {
    let leader: string | null = null;
    await waitFor(
      async () => {
        const all = await Promise.all(nodes.map(status));
        const leaders = new Set(all.map((s) => s?.leader?.ready && s.leader.node));
        if (all.some((s) => s === null) || leaders.size !== 1) return false;
        leader = all[0]?.leader?.node ?? null;
        if (leader === null) return false;
        const st = await c().status();
        return (
          st.healthy &&
          st.primary === leader &&
          st.nodes.every(
            (n) =>
              n.name === leader || (n.state === 'streaming' && n.upstream?.endsWith(`:${c().port(leader!)}`)),
          )
        );
      },
      timeoutMs,
      'one leader, every other node streaming from it',
    );
    return leader as unknown as string;
  };

  return {
    dir,
    api,
    status,
    logs,
    waitFor,
    settled,
    agentPid: (name: string) => pidIn(join(dir(name), 'agent.pid')),
    watchdogPid: (name: string) => pidIn(join(dir(name), 'fence-watchdog.pid')),
  };
}
