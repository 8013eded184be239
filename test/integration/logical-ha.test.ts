import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { haClusterForSuite, haveEtcd } from '../helpers/ha-agents.js';
import { TestCluster, upCluster, waitUntil } from '../helpers/test-cluster.js';

const rows = async (c: TestCluster, node: string) =>
  (await c.sql<{ n: number }>(node, 'SELECT count(*)::int AS n FROM writes'))[0]?.n ?? -1;

describe(
  'a subscriber run by agents (issue 30)',
  { skip: haveEtcd ? false : 'no etcd binary (apt-get install etcd-server)' },
  () => {
    const NODES = ['pg1', 'pg2'];
    let pub: TestCluster;
    let sub: TestCluster;
    before(async () => {
      pub = await TestCluster.create(['pg1', 'pg2']);
      await upCluster(pub);
      await pub.sql(
        'pg1',
        'CREATE TABLE writes (id bigint PRIMARY KEY); INSERT INTO writes SELECT generate_series(1, 100)',
      );
      pub.extraSpec = 'logical:\n  publications:\n    - { name: w, tables: [writes] }\n';
      pub.writeSpec();
      await upCluster(pub);
    });
    // Before the subscriber's hooks: its `after` checks that no server of the file outlived it.
    after(async () => {
      await pub?.cleanup();
    });
    const agents = haClusterForSuite(NODES, 'ha:\n  profile: fast\n', (made) => (sub = made));

    it('`up` makes the subscription on the leader; its metrics are on the leader; after a failover the new primary goes on applying; after a publisher switchover the leader re-syncs it', async () => {
      const leader = await agents.settled();
      sub.extraSpec += `logical:\n  subscriptions:\n    - { name: w_copy, publication: w, from: { spec: ${pub.specFile} } }\n`;
      sub.writeSpec();
      const up = await sub.cli(['up']);
      assert.equal(up.code, 0, up.stderr);
      assert.match(up.stderr, /logical: 1 logical replication step done on pg\d/);
      await waitUntil(
        async () => (await rows(sub, leader)) === 100,
        30_000,
        'the initial copy on the leader',
      );

      const follower = NODES.find((n) => n !== leader) as string;
      const metrics = await (await fetch(agents.api(leader, '/metrics'))).text();
      assert.match(metrics, /^pgrepl_subscription_up\{subscription="w_copy",database="postgres"\} 1$/m);
      assert.match(metrics, /^pgrepl_subscription_tables\{subscription="w_copy",state="r"\} 1$/m);
      assert.doesNotMatch(
        await (await fetch(agents.api(follower, '/metrics'))).text(),
        /^pgrepl_subscription_up\{/m,
      );

      agents.killHost(leader);
      await agents.waitFor(
        async () =>
          (await agents.status(follower))?.leader?.node === follower &&
          (await agents.status(follower))?.leader?.ready === true,
        30_000,
        `${follower} to lead`,
      );
      await pub.sql('pg1', 'INSERT INTO writes SELECT generate_series(101, 150)');
      await waitUntil(
        async () => (await rows(sub, follower)) === 150,
        30_000,
        'rows written after the failover on the new primary',
      );
      const publisherMetrics = await (await fetch(agents.api(follower, '/metrics'))).text();
      assert.match(
        publisherMetrics,
        /^pgrepl_subscription_up\{subscription="w_copy",database="postgres"\} 1$/m,
      );

      // The publisher switches over: its new primary has no slot for w_copy (PostgreSQL 15). The
      // leader agent re-syncs the subscription by itself, and the rows written since arrive, once each.
      const sw = await pub.cli(['switchover', '--to', 'pg2']);
      assert.equal(sw.code, 0, sw.stderr);
      await pub.sql('pg2', 'INSERT INTO writes SELECT generate_series(151, 180)');
      await waitUntil(
        async () => (await rows(sub, follower)) === 180,
        60_000,
        'the re-sync by the leader agent',
      );
      const [distinct] = await sub.sql<{ n: number }>(
        follower,
        'SELECT count(DISTINCT id)::int AS n FROM writes',
      );
      assert.equal(distinct?.n, 180);
    });
  },
);
