import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { queryRestored } from '../helpers/restored.js';
import { haClusterForSuite, haveEtcd } from '../helpers/ha-agents.js';
import { waitReplayed, waitUntil } from '../helpers/test-cluster.js';
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
    const agents = haClusterForSuite(
      NODES,
      'ha:\n  profile: fast\nbackup: { clone: backup }\n',
      (made) => (c = made),
    );

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

    it('re-clones a replica whose data is gone from the repository (backup.clone: backup), through its agent', async () => {
      // The host killed by the test before stays down: the two others run on.
      const live = NODES.filter((n) => c.postmasterPid(n) !== null);
      const leader = (await agents.status(live[0] as string))?.leader?.node as string;
      const replica = live.find((n) => n !== leader) as string;
      const stop = await c.cli(['stop', replica]);
      assert.equal(stop.code, 0, stop.stderr);
      await waitUntil(() => c.postmasterPid(replica) === null, 10_000, `${replica} to stop`);
      rmSync(c.dataDir(replica), { recursive: true, force: true });
      const start = await c.cli(['start', replica]);
      assert.equal(start.code, 0, start.stderr);
      await agents.waitFor(
        async () => (await c.status()).nodes.find((n) => n.name === replica)?.state === 'streaming',
        60_000,
        `${replica} streaming again`,
      );
      await waitReplayed(c, leader, [replica]);
      assert.equal(
        Number((await c.sql<{ n: string }>(replica, 'SELECT count(*) AS n FROM writes'))[0]?.n),
        300,
      );
      assert.match(
        readFileSync(join(agents.dir(replica), 'agent.log'), 'utf8'),
        new RegExp(`re-cloning ${replica} from the backup repository`),
      );
    });
  },
);

describe(
  'backup: added to a running cluster with agents, then backups on a schedule (issue 28)',
  { skip: haveEtcd ? false : 'no etcd binary (apt-get install etcd-server)' },
  () => {
    const NODES = ['pg1', 'pg2'];
    let c: TestCluster;
    const agents = haClusterForSuite(NODES, 'ha:\n  profile: fast\n', (made) => (c = made));

    it('archives after a restart and a second `up`; the leader agent then takes backups when due, one at a time', async () => {
      const leader = await agents.settled();
      c.extraSpec += 'backup:\n  schedule: { incr: "*/6 * * * * *" }\n';
      c.writeSpec();
      const first = await c.cli(['up']);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, new RegExp(`${leader} archives once it restarts with backup:`));
      // The agents take the new spec and render it; archive_mode and the socket need a restart.
      await agents.waitFor(
        async () => (await c.status()).nodes.every((n) => n.pendingRestart.includes('archive_mode')),
        30_000,
        'the agents to render archiving',
      );
      const restart = await c.cli(['restart']);
      assert.equal(restart.code, 0, restart.stderr);
      await agents.settled();
      const second = await c.cli(['up']);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, /the stanza is made from pg\d, and its WAL reaches the repository/);

      await agents.waitFor(
        async () => {
          const l = JSON.parse((await c.cli(['backups', '--json'])).stdout) as { backups: unknown[] };
          return l.backups.length >= 2;
        },
        60_000,
        'two scheduled backups',
      );
      const l = JSON.parse((await c.cli(['backups', '--json'])).stdout) as {
        backups: { type: string; startedAt: number; stoppedAt: number }[];
      };
      // The first is full (pgBackRest's rule: no incremental without one), the next incremental.
      assert.equal(l.backups[0]?.type, 'full');
      assert.equal(l.backups[1]?.type, 'incr');
      // One at a time: none began before the one before it ended.
      for (let i = 1; i < l.backups.length; i++)
        assert.ok(
          (l.backups[i]?.startedAt ?? 0) >= (l.backups[i - 1]?.stoppedAt ?? 0),
          JSON.stringify(l.backups),
        );
      const now = await agents.settled();
      const metrics = await (await fetch(agents.api(now, '/metrics'))).text();
      const age = Number(
        /^pgrepl_last_backup_age_seconds\{type="(?:full|incr)"\} ([\d.e+-]+)$/m.exec(metrics)?.[1],
      );
      assert.ok(age >= 0 && age < 60, metrics);
      const follower = NODES.find((n) => n !== now) as string;
      assert.doesNotMatch(
        await (await fetch(agents.api(follower, '/metrics'))).text(),
        /^pgrepl_last_backup_age_seconds\{/m,
      );
    });
  },
);
