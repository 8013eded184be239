import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { drizzle } from 'drizzle-orm/node-postgres';
import { sql as dsql } from 'drizzle-orm';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { createClusterPool } from '../../src/client/index.js';
import type { ClusterPool, ReadToken, RouteEvent } from '../../src/client/index.js';
import { poolLoad } from '../helpers/pool-load.js';
import type { PoolLoadHistory } from '../helpers/pool-load.js';
import { clusterForSuite, upCluster, waitReplayed, waitUntil } from '../helpers/test-cluster.js';
import type { TestCluster } from '../helpers/test-cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The pool over the test cluster, from the URI `pgrepl url` prints (TLS checked against its CA). */
async function poolOver(
  c: TestCluster,
  o: { maxLagMs?: number; refreshMs?: number; onRoute?: (e: RouteEvent) => void } = {},
): Promise<ClusterPool> {
  const url = (await c.cli(['url', '--with-password'])).stdout.trim();
  const pool = createClusterPool({
    url,
    refreshMs: o.refreshMs ?? 100,
    maxLagMs: o.maxLagMs ?? 1000,
    max: 12,
    ...(o.onRoute ? { onRoute: o.onRoute } : {}),
  });
  await pool.ready;
  return pool;
}

/** Which node's port answered each of `n` reads. */
async function readPorts(pool: ClusterPool, n: number): Promise<Map<number, number>> {
  const seen = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const { rows } = await pool.read<{ port: number }>('SELECT inet_server_port() AS port');
    const port = rows[0]?.port ?? 0;
    seen.set(port, (seen.get(port) ?? 0) + 1);
  }
  return seen;
}

describe('pgrepl/client against a real cluster (issue 14)', () => {
  let c: TestCluster;
  clusterForSuite(['n1', 'n2', 'n3'], (made) => (c = made), {
    extraSpec: 'replication: { mode: sync }\n',
    setUp: async (made) => {
      await upCluster(made);
      await made.sql('n1', 'CREATE TABLE items (id bigint PRIMARY KEY, name text)');
    },
  });

  it('spreads reads over the replicas; a paused or stopped replica gets none, and comes back when fresh', async () => {
    const routes: RouteEvent[] = [];
    const pool = await poolOver(c, { maxLagMs: 300, onRoute: (e) => routes.push(e) });
    try {
      const [p1, p2, p3] = ['n1', 'n2', 'n3'].map((n) => c.port(n));
      const spread = await readPorts(pool, 100);
      assert.equal(spread.get(p1 as number) ?? 0, 0, 'the primary gets no read while replicas are fresh');
      assert.ok(
        (spread.get(p2 as number) ?? 0) >= 30 && (spread.get(p3 as number) ?? 0) >= 30,
        [...spread].join(),
      );
      assert.match(
        routes.at(-1)?.reason ?? '',
        /^a read: 127\.0\.0\.1:\d+ is \d+ bytes and \d+ ms behind/,
        'each decision is told with its reason',
      );

      // Replay paused on n3 while the primary writes: n3 falls behind and gets no read.
      await c.sql('n3', 'SELECT pg_wal_replay_pause()');
      const writing = (async () => {
        for (let i = 0; i < 40; i++) {
          await pool.write('INSERT INTO items VALUES ($1, $2)', [1000 + i, 'x']);
          await sleep(20);
        }
      })();
      await waitUntil(
        () => (pool.topology().nodes.find((n) => n.name.endsWith(`:${p3}`))?.lagMs ?? 0) > 300,
        5000,
        'n3 stale',
      );
      const paused = await readPorts(pool, 60);
      await writing;
      assert.equal(paused.get(p3 as number) ?? 0, 0, `a paused replica gets no read: ${[...paused].join()}`);
      await c.sql('n3', 'SELECT pg_wal_replay_resume()');
      await waitUntil(
        async () => ((await readPorts(pool, 20)).get(p3 as number) ?? 0) > 0,
        10_000,
        'n3 read again',
      );

      // n2 stopped: reads go on without an error, elsewhere; started, it gets reads again.
      assert.equal((await c.cli(['stop', 'n2'])).code, 0);
      const stopped = await readPorts(pool, 60);
      assert.equal(stopped.get(p2 as number) ?? 0, 0, [...stopped].join());
      assert.equal((await c.cli(['start', 'n2'])).code, 0);
      await waitUntil(
        async () => ((await readPorts(pool, 20)).get(p2 as number) ?? 0) > 0,
        15_000,
        'n2 read again',
      );
    } finally {
      await pool.end();
    }
  });

  it('reads its own writes: 10,000 write-then-read pairs, replay paused now and then on the replicas', async () => {
    const pool = await poolOver(c);
    await pool.query('CREATE TABLE ryw (id bigint PRIMARY KEY)');
    let stop = false;
    // Replay paused for 150 ms on one replica or the other, every 300 ms.
    const pauser = (async () => {
      for (let i = 0; !stop; i++) {
        const n = i % 2 === 0 ? 'n2' : 'n3';
        await c.sql(n, 'SELECT pg_wal_replay_pause()');
        await sleep(150);
        await c.sql(n, 'SELECT pg_wal_replay_resume()');
        await sleep(150);
      }
    })();
    const misses: number[] = [];
    const fromReplica = { yes: 0, no: 0 };
    const ports = new Set([c.port('n2'), c.port('n3')]);
    let next = 0;
    const worker = async () => {
      for (let id = next++; id < 10_000; id = next++) {
        const w = await pool.write('INSERT INTO ryw VALUES ($1)', [id]);
        assert.ok(w.token, 'every acknowledged write has a token');
        const r = await pool.read<{ port: number }>(
          'SELECT inet_server_port() AS port FROM ryw WHERE id = $1',
          [id],
          { after: w.token },
        );
        if (r.rows.length !== 1) misses.push(id);
        if (ports.has(r.rows[0]?.port ?? 0)) fromReplica.yes++;
        else fromReplica.no++;
      }
    };
    try {
      await Promise.all(Array.from({ length: 8 }, worker));
    } finally {
      stop = true;
      await pauser;
      await Promise.all(['n2', 'n3'].map((n) => c.sql(n, 'SELECT pg_wal_replay_resume()')));
      await pool.end();
    }
    assert.deepEqual(misses, [], 'no read missed its own write');
    assert.ok(fromReplica.yes > 5000, `replicas served most of them (${fromReplica.yes} of 10000)`);
    assert.ok(pool.stats.replayWaits > 0, 'some reads waited for a replica to replay their token');
  });

  it('keeps its session token across writes and reads (AsyncLocalStorage), and from a cookie', async () => {
    // Paused replicas stay within these bounds: only a token keeps a read off them.
    const pool = await poolOver(c, { maxLagMs: 60_000 });
    try {
      await c.sql('n2', 'SELECT pg_wal_replay_pause()');
      await c.sql('n3', 'SELECT pg_wal_replay_pause()');
      let kept: ReadToken | null = null;
      await pool.session(async () => {
        await pool.write('INSERT INTO items VALUES (1, $1)', ['session']);
        kept = pool.sessionToken();
        const { rows } = await pool.read('SELECT name FROM items WHERE id = 1');
        assert.deepEqual(rows, [{ name: 'session' }], 'read in the session after its write: the primary');
      });
      assert.ok(kept);
      await pool.session(async () => {
        const { rows } = await pool.read('SELECT name FROM items WHERE id = 1');
        assert.deepEqual(rows, [{ name: 'session' }], 'a new session from the cookie reads it too');
      }, kept);
      const outside = await pool.read('SELECT name FROM items WHERE id = 1');
      assert.deepEqual(outside.rows, [], 'outside a session a fresh replica may not have it yet');
    } finally {
      await c.sql('n2', 'SELECT pg_wal_replay_resume()');
      await c.sql('n3', 'SELECT pg_wal_replay_resume()');
      await pool.end();
    }
  });

  it("hands what a transaction's function throws back as it was, rolled back, the primary left in the routing", async () => {
    const pool = await poolOver(c);
    try {
      const primary = pool.topology().primary;
      const mine = new Error('the order is invalid');
      await assert.rejects(
        pool.transaction(async (client) => {
          await client.query('INSERT INTO items VALUES (30, $1)', ['rolled back']);
          throw mine;
        }),
        (err) => err === mine,
      );
      await assert.rejects(
        pool.transaction((client) => client.query('INSERT INTO items VALUES (1, $1)', ['duplicate'])),
        (err: { code?: string }) => err.code === '23505',
      );
      assert.equal(pool.topology().primary, primary, 'an error of the caller says nothing of the node');
      assert.equal(pool.stats.outcomeUnknown, 0);
      const { rows } = await pool.query('SELECT count(*)::int AS n FROM items WHERE id = 30');
      assert.deepEqual(rows, [{ n: 0 }], 'rolled back');
      const after = await pool.transaction((client) => client.query('SELECT 1 AS one'));
      assert.deepEqual(after.value.rows, [{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });

  it('serves kysely and drizzle: their writes go to the primary, a reader sends their reads to replicas', async () => {
    const pool = await poolOver(c);
    interface Db {
      items: { id: number; name: string };
    }
    const db = new Kysely<Db>({ dialect: new PostgresDialect({ pool }) });
    const replicas = new Kysely<Db>({ dialect: new PostgresDialect({ pool: pool.reader() }) });
    const ddb = drizzle(pool.asPgPool());
    const dread = drizzle(pool.reader().asPgPool());
    try {
      await db.insertInto('items').values({ id: 10, name: 'kysely' }).execute();
      await db
        .transaction()
        .execute((tx) => tx.insertInto('items').values({ id: 11, name: 'in a tx' }).execute());
      await ddb.execute(dsql`INSERT INTO items VALUES (12, 'drizzle')`);
      await ddb.transaction(async (tx) => {
        await tx.execute(dsql`INSERT INTO items VALUES (13, 'drizzle tx')`);
      });
      await waitReplayed(c, 'n1', ['n2', 'n3']);
      const names = await replicas
        .selectFrom('items')
        .select('name')
        .where('id', '>=', 10)
        .where('id', '<=', 13)
        .orderBy('id')
        .execute();
      assert.deepEqual(
        names.map((r) => r.name),
        ['kysely', 'in a tx', 'drizzle', 'drizzle tx'],
      );
      const replicaPorts = [c.port('n2'), c.port('n3')];
      const k = await sql<{ port: number }>`SELECT inet_server_port() AS port`.execute(replicas);
      assert.ok(replicaPorts.includes(k.rows[0]?.port ?? 0), 'kysely read on a replica');
      const d = await dread.execute<{ port: number }>(dsql`SELECT inet_server_port() AS port`);
      assert.ok(replicaPorts.includes(d.rows[0]?.port ?? 0), 'drizzle read on a replica');
      const w = await sql<{ port: number }>`SELECT inet_server_port() AS port`.execute(db);
      assert.equal(w.rows[0]?.port, c.port('n1'), 'kysely on the pool itself: the primary');
    } finally {
      await pool.end();
    }
  });

  it('goes on through a switchover under load: no acknowledged write lost, no read older than its token', async (t) => {
    const pool = await poolOver(c);
    await pool.query('CREATE TABLE history (id bigint PRIMARY KEY)');
    const load = poolLoad(pool, 'history');
    let h: PoolLoadHistory;
    try {
      await sleep(500);
      const before = load.history.acked.length;
      const sw = await c.cli(['switchover', '--to', 'n2']);
      assert.equal(sw.code, 0, sw.stderr);
      await waitUntil(
        () => load.history.acked.length > before + 200,
        20_000,
        'writes to go on after the switchover',
      );
    } finally {
      h = await load.stop();
      await pool.end();
    }
    t.diagnostic(
      `${h.acked.length} acknowledged, ${h.unknown.length} unknown, writes down at most ${Math.round(h.longestGapMs)} ms, ${pool.stats.retries} retries`,
    );
    assert.deepEqual(h.errors, [], 'the application saw no error but unknown outcomes');
    assert.deepEqual(h.misses, [], 'no read older than its token');
    const rows = await c.sql<{ id: string }>('n2', 'SELECT id FROM history');
    const held = new Set(rows.map((r) => Number(r.id)));
    assert.deepEqual(
      h.acked.filter((id) => !held.has(id)),
      [],
      'every acknowledged write is on the new primary',
    );
    assert.equal(pool.topology().primary?.endsWith(`:${c.port('n2')}`), true);
  });

  it('sends a write that the topology it knows would route to a demoted primary to the new one, without an error', async () => {
    // Roles read again only once a minute: after the switchover the pool still holds n2 as the
    // primary until the write's own failure (read-only, or the connection the switchover ended).
    const pool = await poolOver(c, { refreshMs: 60_000 });
    try {
      await pool.write('INSERT INTO items VALUES (20, $1)', ['before']);
      assert.equal(pool.topology().primary?.endsWith(`:${c.port('n2')}`), true);
      const sw = await c.cli(['switchover', '--to', 'n1']);
      assert.equal(sw.code, 0, sw.stderr);
      const w = await pool.write('INSERT INTO items VALUES (21, $1) RETURNING inet_server_port() AS port', [
        'after',
      ]);
      assert.equal(w.rows[0]?.port, c.port('n1'), 'written on the new primary');
      assert.ok(pool.stats.retries <= 1, `retried at most once (${pool.stats.retries})`);
    } finally {
      await pool.end();
    }
  });
});
