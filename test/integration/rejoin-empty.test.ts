import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { haAgents, haveEtcd } from '../helpers/ha-agents.js';
import type { TestCluster as Cluster } from '../helpers/test-cluster.js';
import {
  TestCluster,
  assertNoLeakedServers,
  clusterForSuite,
  upCluster,
  waitUntil,
} from '../helpers/test-cluster.js';

const count = async (c: Cluster, node: string) =>
  Number((await c.sql<{ n: string }>(node, 'SELECT count(*) AS n FROM t'))[0]?.n);

describe('a node whose data directory is gone (a replaced host, a wiped disk)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), {
    setUp: async (made) => {
      await upCluster(made);
      await made.sql('pg1', 'CREATE TABLE t AS SELECT generate_series(1, 500) AS id');
    },
  });

  it('is re-cloned by `pgrepl rejoin`, which says why, and streams again', async () => {
    const stop = await c.cli(['stop', 'pg2']);
    assert.equal(stop.code, 0, stop.stderr);
    rmSync(c.dataDir('pg2'), { recursive: true, force: true });
    const r = await c.cli(['rejoin', 'pg2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr + r.stdout, /pg2 has no data directory: a fresh copy of pg1/);
    assert.match(r.stdout, /pg2 streams from pg1 again \(re-?clone/);
    assert.equal(await count(c, 'pg2'), 500);
    assert.equal((await c.status()).healthy, true);
  });
});

describe(
  'with agents, a node whose data directory is gone clones itself from the leader (issue 13)',
  { skip: haveEtcd ? false : 'no etcd binary (apt-get install etcd-server)' },
  () => {
    const NODES = ['pg1', 'pg2', 'pg3'];
    let c: TestCluster;
    const agents = haAgents(() => c, NODES);

    before(async () => {
      c = await TestCluster.create(NODES, 'ha:\n  profile: fast\n');
      const up = await c.cli(['up', '--ha']);
      assert.equal(up.code, 0, up.stderr);
    });

    after(async () => {
      await c?.cleanup();
      assertNoLeakedServers();
    });

    it('streams again once started, with every row, without `rejoin`', async () => {
      const leader = await agents.settled();
      await c.sql(leader, 'CREATE TABLE t AS SELECT generate_series(1, 300) AS id');
      const replica = NODES.find((n) => n !== leader) as string;
      const stop = await c.cli(['stop', replica]);
      assert.equal(stop.code, 0, stop.stderr);
      await waitUntil(() => c.postmasterPid(replica) === null, 10_000, `${replica} to stop`);
      rmSync(c.dataDir(replica), { recursive: true, force: true });
      // Copies earlier re-clones moved aside: the agent keeps only the newest.
      const aside = (at: string) => `${c.dataDir(replica)}.pgrepl-old-${at}`;
      for (const at of ['2026-01-01T00-00-00-000Z', '2026-02-01T00-00-00-000Z'])
        mkdirSync(aside(at), { recursive: true });
      const start = await c.cli(['start', replica]);
      assert.equal(start.code, 0, start.stderr);
      await agents.settled();
      assert.equal(await count(c, replica), 300);
      assert.deepEqual(
        [aside('2026-01-01T00-00-00-000Z'), aside('2026-02-01T00-00-00-000Z')].map(existsSync),
        [false, true],
      );
    });
  },
);
