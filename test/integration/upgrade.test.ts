import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClusterPool } from '../../src/client/index.js';
import type { ClusterPool } from '../../src/client/index.js';
import {
  NO_PG17,
  PG17_BIN,
  TestCluster,
  assertNoLeakedServers,
  upCluster,
  waitUntil,
} from '../helpers/test-cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An application writing through the pool: each acknowledged row's number and the id its sequence gave it. */
function writer(pool: ClusterPool, first: number) {
  const acked: { n: number; id: number }[] = [];
  const errors: string[] = [];
  let unknown = 0;
  let stopped = false;
  let next = first;
  let longestGapMs = 0;
  let last = performance.now();
  const loop = async () => {
    while (!stopped) {
      const n = next++;
      try {
        const r = await pool.write<{ id: string }>('INSERT INTO events (n) VALUES ($1) RETURNING id', [n]);
        const at = performance.now();
        longestGapMs = Math.max(longestGapMs, at - last);
        last = at;
        acked.push({ n, id: Number(r.rows[0]?.id) });
      } catch (err) {
        if ((err as { code?: string }).code === 'E_OUTCOME_UNKNOWN') unknown += 1;
        else errors.push((err as Error).message);
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
      return { acked, errors, unknown, longestGapMs };
    },
  };
}

/** The application's pool over the hosts of both clusters: writes go to whichever takes them. */
async function appPool(ports: readonly number[]): Promise<ClusterPool> {
  const pool = createClusterPool({
    hosts: ports.map((port) => ({ host: '127.0.0.1', port })),
    user: 'app',
    password: 'app-secret',
    database: 'postgres',
    refreshMs: 100,
    failoverTimeoutMs: 60_000,
  });
  await pool.ready;
  return pool;
}

describe(
  'pgrepl upgrade: online from PostgreSQL 15 to 17 (issue 30)',
  {
    skip: NO_PG17,
  },
  () => {
    let old: TestCluster;
    const newSpec = () => join(old.base, 'pgrepl-pg17.yaml');
    const newPort = () => old.port('pg1') + 100;
    /** The old cluster's primary: publishing moves it (wal_level's restart is a switchover). */
    const oldPrimary = async (): Promise<string> => {
      for (const n of ['pg1', 'pg2']) {
        const [row] = await old.sql<{ r: boolean }>(n, 'SELECT pg_is_in_recovery() AS r');
        if (row?.r === false) return n;
      }
      throw new Error('the old cluster has no primary');
    };
    const onNew = async <R extends object>(
      text: string,
      database = 'postgres',
      port = newPort(),
    ): Promise<R[]> => {
      const pg = (await import('pg')).default;
      const c = new pg.Client({
        host: '127.0.0.1',
        port,
        user: 'postgres',
        password: old.superuserPassword(),
        database,
      });
      await c.connect();
      try {
        return (await c.query(text)).rows as R[];
      } finally {
        await c.end();
      }
    };

    before(async () => {
      old = await TestCluster.create(['pg1', 'pg2'], 'access:\n  - { cidr: 127.0.0.1/32, user: app }\n');
      await upCluster(old);
      await old.sql(
        'pg1',
        "CREATE TABLE events (id bigserial PRIMARY KEY, n int NOT NULL, at timestamptz DEFAULT now()); INSERT INTO events (n) SELECT -g FROM generate_series(1, 2000) g; CREATE ROLE app LOGIN PASSWORD 'app-secret'; GRANT ALL ON events, events_id_seq TO app",
      );
      await old.sql('pg1', 'CREATE DATABASE shop OWNER app');
      const pg = (await import('pg')).default;
      const shop = new pg.Client({
        host: '127.0.0.1',
        port: old.port('pg1'),
        user: 'app',
        password: 'app-secret',
        database: 'shop',
      });
      await shop.connect();
      await shop.query(
        "CREATE TABLE items (id serial PRIMARY KEY, name text); INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 50) g",
      );
      await shop.end();
    });

    after(async () => {
      await old?.cleanup();
      assertNoLeakedServers();
    });

    it('refuses while the pre-flight check finds a table without a key, and changes nothing', async () => {
      await old.sql('pg1', 'CREATE TABLE notes (body text)');
      const r = await old.cli(['upgrade', '--to-bin', PG17_BIN]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /E_LOGICAL_PREFLIGHT: .*\n.*\[no-replica-identity\] postgres: .*public\.notes/);
      assert.equal(existsSync(newSpec()), false);
      assert.equal(existsSync(join(old.base, 'state', 'upgrade.json')), false);
      await old.sql('pg1', 'DROP TABLE notes');
    });

    it('moves the writes to PostgreSQL 17 under a writer through the client library: no acknowledged commit lost, sequences go on exactly, the old cluster refuses writes', async (t) => {
      const pool = await appPool([old.port('pg1'), old.port('pg2'), newPort(), old.port('pg2') + 100]);
      const load = writer(pool, 1);
      let result;
      let h;
      try {
        await waitUntil(() => load.acked.length > 50, 10_000, 'writes before the upgrade');
        const up = await old.cli(['upgrade', '--to-bin', PG17_BIN, '--json']);
        assert.equal(up.code, 0, up.stderr);
        assert.match(
          up.stderr,
          /switch over from pg1 to pg2: pg1 restarts as its replica/,
          'a rolling restart',
        );
        assert.match(up.stderr, /cloned pg2 in/, "the new cluster's replica, copied without pg_basebackup");
        assert.match(up.stderr, /cluster test is up in [\d.]+ s: pg2 primary, pg1 streaming/);
        result = JSON.parse(up.stdout) as {
          phase: string;
          gapMs: number;
          sequences: number;
          specFile: string;
          phasesMs: Record<string, number>;
        };
        const at = load.acked.length;
        await waitUntil(() => load.acked.length > at + 100, 30_000, 'writes after the cutover');
      } finally {
        h = await load.stop();
        await pool.end();
      }
      t.diagnostic(
        `${h.acked.length} acknowledged, ${h.unknown} unknown; cutover gap ${result?.gapMs} ms (${JSON.stringify(result?.phasesMs)}), writes down at most ${Math.round(h.longestGapMs)} ms`,
      );
      assert.equal(result?.phase, 'cut-over');
      assert.equal(result?.specFile, newSpec());
      assert.ok((result?.sequences ?? 0) >= 2, 'events_id_seq and shop items_id_seq');
      assert.deepEqual(h.errors, [], 'the application saw no error');
      const [version] = await onNew<{ v: string }>("SELECT current_setting('server_version_num') AS v");
      assert.match(version?.v ?? '', /^17\d{4}$/);
      const held = new Map(
        (await onNew<{ n: number; id: string }>('SELECT n, id FROM events WHERE n > 0')).map((r) => [
          r.n,
          Number(r.id),
        ]),
      );
      assert.deepEqual(
        h.acked.filter((a) => held.get(a.n) !== a.id),
        [],
        'every acknowledged row is on the new cluster with the id it was given',
      );
      const ids = h.acked.map((a) => a.id).sort((a, b) => a - b);
      assert.equal(new Set(ids).size, ids.length, 'no id given twice: the sequence went on where it stood');
      const [shopItems] = await onNew<{ n: number }>('SELECT count(*)::int AS n FROM items', 'shop');
      assert.equal(shopItems?.n, 50, 'a second database, copied');
      await assert.rejects(
        old.sql(await oldPrimary(), 'INSERT INTO events (n) VALUES (0)'),
        /read-only transaction/,
        'the old cluster refuses writes',
      );
      const oldReplica = (await oldPrimary()) === 'pg1' ? 'pg2' : 'pg1';
      assert.deepEqual(
        await old.sql(oldReplica, "SELECT current_setting('default_transaction_read_only') AS ro"),
        [{ ro: 'on' }],
        'a replica of the old cluster, promoted later, would refuse writes too',
      );
      assert.deepEqual(
        await onNew(
          "SELECT current_setting('default_transaction_read_only') AS ro",
          'postgres',
          old.port('pg2') + 100,
        ),
        [{ ro: 'off' }],
        "the new cluster's replica, promoted later, would take writes",
      );
      const [last] = await onNew<{ id: string }>('SELECT max(id) AS id FROM events');
      await waitUntil(
        async () => {
          const [row] = await old.sql<{ id: string }>(await oldPrimary(), 'SELECT max(id) AS id FROM events');
          return row?.id === last?.id;
        },
        30_000,
        "the old cluster to apply the new one's writes (the way back)",
      );
      const status = JSON.parse((await old.cli(['upgrade', '--json'])).stdout) as { phase: string };
      assert.equal(status.phase, 'cut-over');
      const clusterStatus = await old.cli(['status']);
      assert.match(
        clusterStatus.stdout,
        /upgrade to test-pg17 \(PostgreSQL 17\.\d+, spec .*\): cut-over; writes moved at /,
      );
      assert.match(readFileSync(newSpec(), 'utf8'), /cluster: test-pg17/);
    });

    it('refuses DDL on the old cluster while the upgrade is under way', async () => {
      await assert.rejects(
        old.sql(await oldPrimary(), 'BEGIN READ WRITE; CREATE TABLE later (id int PRIMARY KEY); COMMIT'),
        /pgrepl upgrade is under way: CREATE TABLE is refused/,
      );
    });

    it('rolls back: the old cluster takes writes again with every commit made on the new one', async () => {
      const pool = await appPool([old.port('pg1'), old.port('pg2'), newPort(), old.port('pg2') + 100]);
      const load = writer(pool, 1_000_000);
      let h;
      try {
        await waitUntil(() => load.acked.length > 50, 10_000, 'writes on the new cluster');
        const back = await old.cli(['upgrade', '--rollback']);
        assert.equal(back.code, 0, back.stderr);
        assert.match(back.stdout, /writes moved from test-pg17 to test in \d+ ms/);
        const at = load.acked.length;
        await waitUntil(() => load.acked.length > at + 50, 30_000, 'writes after the rollback');
      } finally {
        h = await load.stop();
        await pool.end();
      }
      assert.deepEqual(h.errors, []);
      const held = new Map(
        (
          await old.sql<{ n: number; id: string }>(await oldPrimary(), 'SELECT n, id FROM events WHERE n > 0')
        ).map((r) => [r.n, Number(r.id)]),
      );
      assert.deepEqual(
        h.acked.filter((a) => held.get(a.n) !== a.id),
        [],
        'every row acknowledged on either side is on the old cluster',
      );
      for (const node of ['pg1', 'pg2'])
        assert.deepEqual(
          await old.sql(node, "SELECT current_setting('default_transaction_read_only') AS ro"),
          [{ ro: 'off' }],
          node,
        );
      assert.equal(existsSync(newSpec()), false, "the new cluster's spec is gone");
      assert.equal(existsSync(join(old.base, 'state', 'upgrade.json')), false);
      await old.sql(await oldPrimary(), 'CREATE TABLE later (id int PRIMARY KEY); DROP TABLE later');
      assert.doesNotMatch(readFileSync(old.specFile, 'utf8'), /pgrepl_upgrade/);
    });

    it('prepares without cutting over, and rolls that back: nothing of the upgrade left on the old cluster', async () => {
      const prepared = await old.cli(['upgrade', '--to-bin', PG17_BIN, '--prepare-only']);
      assert.equal(prepared.code, 0, prepared.stderr);
      assert.match(prepared.stdout, /has caught up with test/);
      const status = JSON.parse((await old.cli(['upgrade', '--json'])).stdout) as { phase: string };
      assert.equal(status.phase, 'subscribed');
      const back = await old.cli(['upgrade', '--rollback']);
      assert.equal(back.code, 0, back.stderr);
      assert.equal(existsSync(newSpec()), false);
      const primary = await oldPrimary();
      assert.deepEqual(
        await old.sql(primary, "SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'logical'"),
        [],
        'the subscriptions took their slots with them',
      );
      assert.deepEqual(await old.sql(primary, 'SELECT pubname FROM pg_publication'), []);
      await old.sql(primary, 'CREATE TABLE later (id int PRIMARY KEY); DROP TABLE later');
    });

    it('gives up a cutover whose drain passes its budget: the old cluster takes writes again, and a later cutover goes through', async () => {
      const prepared = await old.cli(['upgrade', '--to-bin', PG17_BIN, '--prepare-only']);
      assert.equal(prepared.code, 0, prepared.stderr);
      // A session on the new cluster holds the table: the subscription cannot apply the next row.
      const pg = (await import('pg')).default;
      const holder = new pg.Client({
        host: '127.0.0.1',
        port: newPort(),
        user: 'postgres',
        password: old.superuserPassword(),
        database: 'postgres',
      });
      await holder.connect();
      try {
        // SHARE: it blocks the subscription's inserts and takes no transaction id (an ACCESS
        // EXCLUSIVE lock is WAL-logged, and would make the way back's slot wait for it).
        await holder.query('BEGIN; LOCK TABLE events IN SHARE MODE');
        await old.sql(await oldPrimary(), 'INSERT INTO events (n) VALUES (-100001)');
        const stuck = await old.cli(['upgrade', '--cutover', '--drain-budget', '500']);
        assert.equal(stuck.code, 1, stuck.stdout);
        assert.match(
          stuck.stderr,
          /E_UPGRADE_DRAIN: pgrepl_upgrade_1 did not confirm every commit up to .* within 500 ms: cluster test takes writes again and nothing moved/,
        );
        await waitUntil(
          async () =>
            old.sql(await oldPrimary(), 'INSERT INTO events (n) VALUES (-100002)').then(
              () => true,
              () => false,
            ),
          5_000,
          'the old cluster to take writes again',
        );
        const status = JSON.parse((await old.cli(['upgrade', '--json'])).stdout) as { phase: string };
        assert.equal(status.phase, 'subscribed');
        assert.deepEqual(
          (
            await onNew<{ n: number }>(
              "SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name LIKE 'pgrepl_rollback%'",
            )
          )[0]?.n,
          0,
          "the way back's slots are gone with the cutover",
        );
      } finally {
        await holder.query('COMMIT').catch(() => undefined);
        await holder.end();
      }
      const cut = await old.cli(['upgrade', '--cutover', '--json']);
      assert.equal(cut.code, 0, cut.stderr);
      assert.equal((JSON.parse(cut.stdout) as { phase: string }).phase, 'cut-over');
      const [rows] = await onNew<{ n: number }>(
        'SELECT count(*)::int AS n FROM events WHERE n IN (-100001, -100002)',
      );
      assert.equal(rows?.n, 2, 'both rows written around the refused cutover are on the new cluster');
    });
  },
);
