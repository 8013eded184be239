import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { etcdClient } from '../../src/dcs/etcd-client.js';
import { haStore } from '../../src/dcs/ha-store.js';
import { haKeys } from '../../src/dcs/ha-values.js';
import { haAgents, haveEtcd } from '../helpers/ha-agents.js';
import { startTestEtcd } from '../helpers/etcd.js';
import type { TestEtcd } from '../helpers/etcd.js';
import { TestCluster, assertNoLeakedServers } from '../helpers/test-cluster.js';

const NODES = ['pg1', 'pg2', 'pg3'];

/**
 * Issue 13: in sync mode a new leader records its synchronous set with the key, before it promotes.
 * Seen in the lab: it then failed to promote (its pg_wal was full) and gave the key up, and its set,
 * which named the old leader, now gone, held every other candidate back until the old leader's host
 * came back. A set recorded by a leader that no standby followed yet is pending: the set it replaced
 * still decides. Here the leader's host dies while the agents are paused, and etcd is left as such
 * a failed leader leaves it; once resumed, a node is promoted without the dead one.
 */
describe(
  'a synchronous set left by a leader that failed before it announced (issue 13)',
  { skip: haveEtcd ? false : 'no etcd binary (apt-get install etcd-server)' },
  () => {
    let c: TestCluster | undefined;
    let etcd: TestEtcd | undefined;
    const agents = haAgents(() => c as TestCluster, NODES);

    after(async () => {
      await c?.cleanup();
      await etcd?.stop();
      assertNoLeakedServers();
    });

    it('is judged by the set it replaced: the cluster fails over without the dead leader', async () => {
      etcd = await startTestEtcd();
      c = await TestCluster.create(
        NODES,
        `replication: { mode: sync }\nha:\n  etcd: ["${etcd.url}"]\n  profile: fast\n`,
      );
      const up = await c.cli(['up', '--ha']);
      assert.equal(up.code, 0, up.stderr);
      const leader = await agents.settled();
      const [failed, other] = NODES.filter((n) => n !== leader) as [string, string];
      const client = etcdClient({ endpoints: [etcd.url], requestTimeoutMs: 2000 });
      const store = haStore(client, 'test');
      const inForce = (await store.read()).view.sync;
      assert.deepEqual(inForce, { count: 1, standbys: [failed, other].sort(), leader });

      const paused = await c.cli(['pause']);
      assert.equal(paused.code, 0, paused.stderr);
      agents.killHost(leader);
      // `failed` won the key, recorded its set (the dead leader and `other`), and died promoting.
      const pending = { count: 1, standbys: [leader, other].sort(), replaces: inForce };
      await client.put(haKeys('test').sync, JSON.stringify(pending));
      await agents.waitFor(
        async () => (await store.read()).view.leader === null,
        15_000,
        `${leader}'s key to run out`,
      );
      const resumed = await c.cli(['unpause']);
      assert.equal(resumed.code, 0, resumed.stderr);

      await agents.waitFor(
        async () => {
          const s = await store.read();
          return s.view.leader?.ready === true && s.view.leader.node !== leader;
        },
        30_000,
        `${failed} or ${other} to be promoted though ${leader} is gone`,
      );
      const s = await store.read();
      const promoted = s.view.leader?.node as string;
      const [row] = await c.sql<{ r: boolean }>(promoted, 'SELECT pg_is_in_recovery() AS r');
      assert.equal(row?.r, false, `${promoted} takes writes`);
      assert.equal(s.view.sync?.replaces, undefined, 'its announcement put its own set in force');
      assert.equal(s.view.sync?.leader, promoted);
      assert.deepEqual(s.view.sync?.standbys, NODES.filter((n) => n !== promoted).sort());
    });
  },
);
