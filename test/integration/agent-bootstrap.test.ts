import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { etcdClient } from '../../src/dcs/etcd-client.js';
import { haStore } from '../../src/dcs/ha-store.js';
import { haAgents, haveEtcd } from '../helpers/ha-agents.js';
import { startTestEtcd } from '../helpers/etcd.js';
import type { TestEtcd } from '../helpers/etcd.js';
import { CLI, TestCluster, alive, assertNoLeakedServers, waitUntil } from '../helpers/test-cluster.js';

const NODES = ['pg1', 'pg2', 'pg3'];

interface History {
  op: string;
  node: string;
}

/**
 * Agents started by hand, one per node, as a service manager starts them on hosts of their own:
 * no `pgrepl up` anywhere. Every agent reads the same spec and the same passwords (shipped to each
 * host on real hosts).
 */
describe(
  'agents form a cluster with no data by themselves (issue 13)',
  { skip: haveEtcd ? false : 'no etcd binary (apt-get install etcd-server)' },
  () => {
    let c: TestCluster | undefined;
    let etcd: TestEtcd | undefined;
    const started: number[] = [];
    const cluster = () => c as TestCluster;
    const agents = haAgents(cluster, NODES);

    const makeCluster = async (extra = '') => {
      etcd = await startTestEtcd();
      c = await TestCluster.create(NODES, `ha:\n  etcd: ["${etcd.url}"]\n  profile: fast\n${extra}`);
      // What `render` ships to each host with --with-secrets: the cluster's passwords.
      // A state dir PostgreSQL's OS user can enter; pgrepl takes it over (0700, its owner) as `up` does.
      mkdirSync(join(c.base, 'state'), { mode: 0o755 });
      const secrets = join(c.base, 'state', 'secrets');
      mkdirSync(secrets, { mode: 0o700 });
      for (const f of ['superuser.password', 'replication.password'])
        writeFileSync(join(secrets, f), `${f.split('.')[0]}-Secret-4711\n`, { mode: 0o600 });
      return c;
    };

    const startAgent = (node: string) => {
      const dir = join(cluster().base, 'state', 'ha', 'agents', node);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const log = openSync(join(dir, 'hand-agent.log'), 'a');
      const child = spawn(process.execPath, [CLI, '-c', cluster().specFile, 'agent', '--node', node], {
        cwd: cluster().base,
        env: { ...process.env, XDG_CACHE_HOME: join(cluster().base, 'cache') },
        stdio: ['ignore', log, log],
        detached: true,
      });
      closeSync(log);
      started.push(child.pid as number);
    };

    const history = async () => {
      const r = await cluster().cli(['history', '--json']);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as History[];
    };

    /** The cluster's initialize key in etcd, as the agents read it. */
    const initializeKey = async () =>
      (
        await haStore(
          etcdClient({ endpoints: [(etcd as TestEtcd).url], requestTimeoutMs: 2000 }),
          'test',
        ).read()
      ).view.initialize;

    const initializations = async () => (await history()).filter((h) => h.op === 'initialize');

    /** The agents agree on `leader`, which alone initialized the cluster. */
    const settledAfterInitializing = async (leader: string) => {
      assert.equal(await agents.settled(), leader);
      assert.deepEqual(
        (await initializations()).map((h) => h.node),
        [leader],
      );
    };

    afterEach(async () => {
      for (const pid of started.splice(0)) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // gone already
        }
        await waitUntil(() => !alive(pid), 20_000, `agent ${pid} to stop`);
      }
      await c?.cleanup();
      await etcd?.stop();
      c = undefined;
      etcd = undefined;
    });

    after(() => assertNoLeakedServers());

    it('the first node of the spec initializes it though its agent starts last; the others clone from it', async () => {
      await makeCluster();
      startAgent('pg3');
      startAgent('pg2');
      await agents.waitFor(
        async () => (await agents.status('pg2'))?.reason?.includes('pg1, earlier in the spec') === true,
        20_000,
        'pg2 to wait for pg1',
      );
      startAgent('pg1');
      await settledAfterInitializing('pg1');
      await cluster().sql('pg1', 'CREATE TABLE t AS SELECT generate_series(1, 100) AS id');
      for (const n of ['pg2', 'pg3'])
        await waitUntil(
          async () =>
            (
              await cluster()
                .sql<{ n: string }>(n, 'SELECT count(*) AS n FROM t')
                .catch(() => [])
            )[0]?.n === '100',
          10_000,
          `${n} to replay the table`,
        );
      assert.deepEqual(
        (({ node, done }) => ({ node, done }))((await initializeKey()) ?? { node: '', done: false }),
        { node: 'pg1', done: true },
      );
    });

    it("with the first node's host down, the next initializes after the grace; the first, started later, clones from it", async () => {
      await makeCluster();
      startAgent('pg2');
      startAgent('pg3');
      await waitUntil(
        async () => {
          const st = await cluster().status();
          return st.primary === 'pg2' && st.nodes.find((n) => n.name === 'pg3')?.state === 'streaming';
        },
        60_000,
        'pg2 primary, pg3 streaming',
      );
      startAgent('pg1');
      await settledAfterInitializing('pg2');
    });

    it('a cluster made by `up` is never initialized again, even with its first node wiped and every server down; the agents bring it back', async () => {
      const made = await makeCluster();
      // Made without agents first, as before the initialize key existed.
      const withHa = made.extraSpec;
      made.extraSpec = '';
      made.writeSpec();
      const up = await made.cli(['up']);
      assert.equal(up.code, 0, up.stderr);
      const systemId = async (node: string) =>
        (
          await made.sql<{ id: string }>(
            node,
            'SELECT system_identifier::text AS id FROM pg_control_system()',
          )
        )[0]?.id;
      const cluster = await systemId('pg2');
      const stop = await made.cli(['down']);
      assert.equal(stop.code, 0, stop.stderr);
      rmSync(made.dataDir('pg1'), { recursive: true, force: true });
      made.extraSpec = withHa;
      made.writeSpec();
      startAgent('pg2');
      await waitUntil(async () => (await initializeKey()) !== null, 20_000, 'the initialize key');
      assert.deepEqual(
        (({ node, done }) => ({ node, done }))((await initializeKey()) ?? { node: '', done: false }),
        { node: 'pg2', done: true },
      );
      startAgent('pg1');
      startAgent('pg3');
      // No one leads and every server is down (a whole-cluster restart): the stopped nodes start
      // read-only, the most advanced is promoted, and pg1 is cloned from it, not initialized.
      const leader = await agents.settled();
      assert.notEqual(leader, 'pg1');
      assert.deepEqual(await initializations(), []);
      assert.equal(await systemId('pg1'), cluster, 'pg1 is a copy of the cluster made by `up`');
    });
  },
);
