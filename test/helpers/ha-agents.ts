import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findEtcd } from '../../src/dcs/local-etcd.js';
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { assertNoLeakedServers, TestCluster, waitUntil } from './test-cluster.js';
import { Writer } from './writer.js';
import { WriteProbe } from './write-probe.js';

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

  /** The tables underLoad writes to, made on the leader. */
  const makeTables = (leader: string) =>
    c().sql(
      leader,
      'CREATE TABLE writes (id bigint PRIMARY KEY); CREATE TABLE probe (node text, at timestamptz DEFAULT now())',
    );

  /**
   * Runs `fault` under a writer (its acknowledged rows must all survive) and a probe that writes to
   * every node directly every 100 ms (no two nodes may acknowledge writes in overlapping runs),
   * then `recover`; returns the leaders before and after, and the first write after the fault.
   */
  const underLoad = async (
    fault: (leader: string) => Promise<void>,
    recover: () => Promise<void>,
    writeTo?: { host: string; port: number }[],
  ) => {
    const before = await settled();
    // Each writer numbers its rows from 1.
    await c().sql(before, 'TRUNCATE writes');
    const password = c().superuserPassword();
    const targets = nodes.map((name) => ({ name, host: '127.0.0.1', port: c().port(name) }));
    const writer = new Writer(writeTo ?? targets, password, 20, 2000);
    const probe = new WriteProbe(targets, password);
    writer.start();
    probe.start();
    try {
      await waitFor(() => writer.acked.length > 5, 10_000, 'the writer to write').catch((err: Error) => {
        throw new Error(`${err.message}\nthe writer's last error: ${writer.lastError}`, { cause: err });
      });
      const ackedBefore = writer.acked.length;
      const faultAt = Date.now();
      await fault(before);
      await recover();
      const leader = await settled();
      await waitUntil(() => writer.acked.length > ackedBefore + 5, 30_000, 'writes after the fault');
      const afterFault = probe.acks.filter((a) => a.sentAt > faultAt);
      const firstWrite = afterFault.length > 0 ? Math.min(...afterFault.map((a) => a.ackAt)) - faultAt : null;
      await writer.stop();
      await probe.stop();
      const rows = await c().sql<{ id: number }>(leader, 'SELECT id FROM writes');
      const have = new Set(rows.map((r) => Number(r.id)));
      const lost = writer.acked.filter((id) => !have.has(id));
      assert.deepEqual(lost, [], 'every acknowledged commit survives');
      const runs = probe.runs().map((r) => r.node);
      const collapsed = runs.filter((n, i) => n !== runs[i - 1]);
      assert.equal(
        new Set(collapsed).size,
        collapsed.length,
        `no node took writes again after another did: ${collapsed.join(' → ')}`,
      );
      return {
        before,
        leader,
        firstWriteMs: firstWrite,
        acks: probe.acks,
        longestGapMs: writer.longestGapMs,
      };
    } finally {
      await writer.stop();
      await probe.stop();
    }
  };

  /** Kills the leader's host: its agent, its watchdog and its postmaster's process group. */
  const killHost = (leader: string) => {
    const pm = c().postmasterPid(leader) as number;
    for (const pid of [pidIn(join(dir(leader), 'agent.pid')), pidIn(join(dir(leader), 'fence-watchdog.pid'))])
      process.kill(pid, 'SIGKILL');
    process.kill(-pm, 'SIGKILL');
  };

  return {
    dir,
    api,
    status,
    logs,
    waitFor,
    settled,
    makeTables,
    underLoad,
    killHost,
    agentPid: (name: string) => pidIn(join(dir(name), 'agent.pid')),
    watchdogPid: (name: string) => pidIn(join(dir(name), 'fence-watchdog.pid')),
  };
}

/**
 * Hooks for the describe block it is called in: a cluster of `nodes` with `extraSpec`, started with
 * `up --ha`, settled, with the tables underLoad writes to; removed after the block even when a test
 * failed, with a check that none of its servers outlived it.
 */
export function haClusterForSuite(
  nodes: readonly string[],
  extraSpec: string,
  use: (c: TestCluster) => void,
): ReturnType<typeof haAgents> {
  let made: TestCluster | undefined;
  const agents = haAgents(() => made as TestCluster, nodes);
  before(async () => {
    made = await TestCluster.create([...nodes], extraSpec);
    use(made);
    const up = await made.cli(['up', '--ha']);
    assert.equal(up.code, 0, up.stderr);
    await agents.makeTables(await agents.settled());
  });
  after(async () => {
    await made?.cleanup();
    assertNoLeakedServers();
  });
  return agents;
}
