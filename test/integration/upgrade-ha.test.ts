import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import { API_OFFSET, haClusterForSuite, haveEtcd } from '../helpers/ha-agents.js';
import type { TestCluster } from '../helpers/test-cluster.js';
import { NO_PG17, PG17_BIN, freePort, waitUntil } from '../helpers/test-cluster.js';

const haproxy = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => existsSync(p)) ?? null;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An application writing through HAProxy's write port: the rows it was told committed, and where. */
function writerVia(port: number, password: string) {
  const pool = new pg.Pool({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    database: 'postgres',
    max: 2,
    connectionTimeoutMillis: 1000,
  });
  pool.on('error', () => undefined);
  const acked: { n: number; id: number; port: number }[] = [];
  let failed = 0;
  let stopped = false;
  let next = 1;
  const loop = async () => {
    while (!stopped) {
      const n = next++;
      try {
        const r = await pool.query<{ id: string; port: number }>(
          'INSERT INTO events (n) VALUES ($1) RETURNING id, inet_server_port() AS port',
          [n],
        );
        acked.push({ n, id: Number(r.rows[0]?.id), port: r.rows[0]?.port ?? 0 });
      } catch {
        // Refused (read-only), cut (HAProxy shut the session), or no server: not acknowledged.
        failed += 1;
      }
      await sleep(5);
    }
  };
  const running = [loop(), loop()];
  return {
    acked,
    stop: async () => {
      stopped = true;
      await Promise.all(running);
      await pool.end();
      return { acked, failed };
    },
  };
}

describe(
  'pgrepl upgrade with agents, behind HAProxy: 15 to 17 (issue 30)',
  {
    skip: !haveEtcd
      ? 'no etcd (apt-get install etcd-server)'
      : haproxy === null
        ? 'no haproxy (apt-get install haproxy)'
        : NO_PG17,
  },
  () => {
    let c: TestCluster;
    const agents = haClusterForSuite(['pg1', 'pg2'], 'ha:\n  profile: fast\n', (made) => (c = made));

    it("moves HAProxy's writes to the new cluster's primary at the cutover, no acknowledged commit lost, then finishes", async (t) => {
      const leader = await agents.settled();
      // The suite's probe table has no key: the pre-flight check would refuse it (as the next line fixes it).
      await c.sql(
        leader,
        'ALTER TABLE probe REPLICA IDENTITY FULL; CREATE TABLE events (id bigserial PRIMARY KEY, n int NOT NULL)',
      );
      const newPort = c.port('pg1') + 100;
      const writePort = await freePort();
      const server = (name: string, port: number) =>
        `    server ${name} 127.0.0.1:${port} check port ${port + API_OFFSET}`;
      // The docs' HAProxy block, over the nodes of both clusters: only the one primary that takes
      // writes passes /primary.
      const cfg = [
        'global',
        '    maxconn 100',
        'defaults',
        '    mode tcp',
        '    timeout connect 1s',
        '    timeout client 30m',
        '    timeout server 30m',
        '    default-server inter 250ms fall 2 rise 1 on-marked-down shutdown-sessions',
        'listen writes',
        `    bind 127.0.0.1:${writePort}`,
        '    option httpchk HEAD /primary',
        '    http-check expect status 200',
        server('pg1', c.port('pg1')),
        server('pg2', c.port('pg2')),
        server('pg1_pg17', newPort),
        '',
      ].join('\n');
      const cfgFile = join(c.base, 'haproxy.cfg');
      writeFileSync(cfgFile, cfg);
      const proxy = spawn(haproxy as string, ['-f', cfgFile, '-db'], { stdio: 'ignore' });
      let h: Awaited<ReturnType<ReturnType<typeof writerVia>['stop']>>;
      let gapMs: number | undefined;
      try {
        const load = writerVia(writePort, c.superuserPassword());
        try {
          await waitUntil(() => load.acked.length > 50, 15_000, 'writes through HAProxy');
          const up = await c.cli(['upgrade', '--to-bin', PG17_BIN, '--nodes', 'pg1', '--json']);
          assert.equal(up.code, 0, up.stderr);
          gapMs = (JSON.parse(up.stdout) as { gapMs: number }).gapMs;
          await waitUntil(
            () => load.acked.filter((a) => a.port === newPort).length > 50,
            30_000,
            "HAProxy to send writes to the new cluster's primary",
          );
        } finally {
          h = await load.stop();
        }
        const byPort = (p: number) => h.acked.filter((a) => a.port === p);
        const lastOld = Math.max(...h.acked.filter((a) => a.port !== newPort).map((a) => a.id));
        const firstNew = Math.min(...byPort(newPort).map((a) => a.id));
        t.diagnostic(
          `${h.acked.length} acknowledged (${byPort(newPort).length} on 17), ${h.failed} refused or cut; cutover gap ${gapMs} ms`,
        );
        assert.ok(firstNew > lastOld, 'ids on the new cluster go on after the old ones');
        const newCluster = new pg.Client({
          host: '127.0.0.1',
          port: newPort,
          user: 'postgres',
          password: c.superuserPassword(),
          database: 'postgres',
        });
        await newCluster.connect();
        const held = new Map(
          (await newCluster.query<{ n: number; id: string }>('SELECT n, id FROM events')).rows.map((r) => [
            r.n,
            Number(r.id),
          ]),
        );
        await newCluster.end();
        assert.deepEqual(
          h.acked.filter((a) => held.get(a.n) !== a.id),
          [],
          'every acknowledged row is on the new cluster',
        );
        const finish = await c.cli(['upgrade', '--finish']);
        assert.equal(finish.code, 0, finish.stderr);
        assert.match(
          finish.stdout,
          /the upgrade is finished: test-pg17 \(PostgreSQL 17\.\d+\) is the cluster/,
        );
        assert.equal(c.postmasterPid('pg1'), null, 'the old cluster is stopped');
        assert.equal(c.postmasterPid('pg2'), null);
        const newSpec = join(c.base, 'pgrepl-pg17.yaml');
        assert.doesNotMatch(
          readFileSync(newSpec, 'utf8'),
          /subscriptions|pgrepl_upgrade|default_transaction_read_only/,
        );
        const status = await c.cli(['-c', newSpec, 'status']);
        assert.equal(status.code, 0, status.stdout + status.stderr);
        const again = await c.cli(['upgrade', '--to-bin', PG17_BIN]);
        assert.match(again.stderr, /E_UPGRADE_STATE: this cluster was upgraded to test-pg17/);
      } finally {
        proxy.kill('SIGKILL');
      }
    });
  },
);
