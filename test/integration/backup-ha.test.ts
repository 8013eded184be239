import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { queryRestored } from '../helpers/restored.js';
import { haClusterForSuite, haveEtcd } from '../helpers/ha-agents.js';
import { waitReplayed } from '../helpers/test-cluster.js';
import type { TestCluster } from '../helpers/test-cluster.js';

interface Listing {
  gaps: unknown[];
  archive: { id: string; min: string; max: string }[];
  archiver: { node: string; lastArchivedWal: string } | null;
}

describe(
  'the WAL archive across a switchover and a failover through the agents (issue 28)',
  { skip: haveEtcd ? false : 'no etcd binary (apt-get install etcd-server)' },
  () => {
    const NODES = ['pg1', 'pg2', 'pg3'];
    let c: TestCluster;
    const agents = haClusterForSuite(NODES, 'ha:\n  profile: fast\nbackup: {}\n', (made) => (c = made));

    it('has no gap, continues on each new timeline, and a restore after both reaches the latest commit', async () => {
      const first = await agents.settled();
      const b = await c.cli(['backup', '--type', 'full']);
      assert.equal(b.code, 0, b.stderr);
      await c.sql(first, 'INSERT INTO writes SELECT generate_series(1, 100)');

      const to = NODES.find((n) => n !== first) as string;
      const sw = await c.cli(['switchover', '--to', to, '--json']);
      assert.equal(sw.code, 0, sw.stderr);
      const second = await agents.settled();
      assert.equal(second, to);
      await c.sql(second, 'INSERT INTO writes SELECT generate_series(101, 200)');
      const others = NODES.filter((n) => n !== second);
      await waitReplayed(c, second, others);

      agents.killHost(second);
      const third = await agents
        .waitFor(
          async () => {
            const s = await agents.status(others[0] as string);
            return s?.leader?.ready === true && others.includes(s.leader.node);
          },
          30_000,
          'a new leader among the survivors',
        )
        .then(async () => (await agents.status(others[0] as string))?.leader?.node as string);
      await c.sql(third, 'INSERT INTO writes SELECT generate_series(201, 300)');

      const listed = await c.cli(['backups', '--json']);
      const l = JSON.parse(listed.stdout) as Listing;
      assert.deepEqual(l.gaps, [], listed.stdout);
      assert.equal(l.archiver?.node, third);
      // Timeline 3 (two promotions): the new primary archives on it.
      assert.match(l.archive[0]?.max ?? '', /^00000003/, listed.stdout);

      const metrics = await (await fetch(agents.api(third, '/metrics'))).text();
      assert.match(metrics, /^pgrepl_archive_failing 0$/m);
      assert.match(metrics, /^pgrepl_archive_pending_segments \d+$/m);
      assert.match(metrics, /^pgrepl_archive_failures_total \d+$/m);

      const r = await c.cli(['restore', '--latest', '--into', join(c.base, 'restored'), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const port = (JSON.parse(r.stdout) as { port: number }).port;
      const [row] = await queryRestored<{ n: string }>(c, port, 'SELECT count(*) AS n FROM writes');
      assert.equal(Number(row?.n), 300);
    });
  },
);
