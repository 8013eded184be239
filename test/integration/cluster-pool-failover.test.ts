import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClusterPool } from '../../src/client/index.js';
import type { ClusterPool } from '../../src/client/index.js';
import { haAgents, haveEtcd } from '../helpers/ha-agents.js';
import { poolLoad } from '../helpers/pool-load.js';
import type { PoolLoadHistory } from '../helpers/pool-load.js';
import { TestCluster, assertNoLeakedServers, waitUntil } from '../helpers/test-cluster.js';

const NODES = ['n1', 'n2', 'n3'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * pgrepl/client over a cluster whose agents fail over on their own (issue 14): the application
 * keeps going through the death of the leader's host, without a restart, and loses nothing it was
 * told was written (sync mode).
 */
describe(
  'pgrepl/client through an automatic failover',
  { skip: haveEtcd ? false : 'no etcd binary (apt-get install etcd-server)' },
  () => {
    let c: TestCluster;
    const agents = haAgents(() => c, NODES);

    before(async () => {
      c = await TestCluster.create(NODES, 'replication:\n  mode: sync\nha:\n  profile: fast\n');
      const up = await c.cli(['up', '--ha']);
      assert.equal(up.code, 0, up.stderr);
      await agents.settled();
    });

    after(async () => {
      await c?.cleanup();
      assertNoLeakedServers();
    });

    it("follows the agents to the new primary when the leader's host dies, losing no acknowledged write", async (t) => {
      const leader = await agents.settled();
      await c.sql(leader, 'CREATE TABLE history (id bigint PRIMARY KEY)');
      const url = (await c.cli(['url', '--with-password'])).stdout.trim();
      // The agents alone would do (they name the nodes); the URI gives the credentials and the CA.
      const pool: ClusterPool = createClusterPool({
        url,
        agents: NODES.map((n) => agents.api(n, '')),
        refreshMs: 100,
        maxLagMs: 1000,
      });
      await pool.ready;
      assert.equal(pool.topology().primary?.endsWith(`:${c.port(leader)}`), true);
      const load = poolLoad(pool, 'history');
      let h: PoolLoadHistory;
      let next = '';
      try {
        await sleep(500);
        const before = load.history.acked.length;
        agents.killHost(leader);
        await waitUntil(
          () => (next = pool.topology().primary ?? '') !== '' && !next.endsWith(`:${c.port(leader)}`),
          30_000,
          'the pool to follow a new primary',
        );
        await waitUntil(() => load.history.acked.length > before + 200, 30_000, 'writes to go on');
      } finally {
        h = await load.stop();
        await pool.end();
      }
      t.diagnostic(
        `${leader} → ${next}: ${h.acked.length} acknowledged, ${h.unknown.length} unknown, writes down at most ${Math.round(h.longestGapMs)} ms`,
      );
      assert.deepEqual(h.errors, [], 'the application saw no error but unknown outcomes');
      assert.deepEqual(h.misses, [], 'no read older than its token');
      const newLeader = NODES.find((n) => next.endsWith(`:${c.port(n)}`)) as string;
      const held = new Set(
        (await c.sql<{ id: string }>(newLeader, 'SELECT id FROM history')).map((r) => Number(r.id)),
      );
      assert.deepEqual(
        h.acked.filter((id) => !held.has(id)),
        [],
        'every acknowledged write is on the new primary',
      );
    });
  },
);
