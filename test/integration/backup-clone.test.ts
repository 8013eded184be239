import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { clusterForSuite, upCluster, waitReplayed, waitUntil } from '../helpers/test-cluster.js';
import type { TestCluster } from '../helpers/test-cluster.js';

const count = async (c: TestCluster, node: string) =>
  Number((await c.sql<{ n: string }>(node, 'SELECT count(*) AS n FROM t'))[0]?.n);

describe('replicas from the backup repository (issue 28)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made), {
    // A slot that may keep little WAL: the new primary drops what a stopped node still needs.
    extraSpec: 'settings: { max_slot_wal_keep_size: 48MB, max_wal_size: 64MB }\nbackup: { clone: backup }\n',
    setUp: upCluster,
  });

  it('`up` clones a new replica from the newest backup, and it streams with every row since', async () => {
    await c.sql('pg1', 'CREATE TABLE t AS SELECT generate_series(1, 1000) AS id');
    const b = await c.cli(['backup', '--type', 'full']);
    assert.equal(b.code, 0, b.stderr);
    await c.sql('pg1', 'INSERT INTO t SELECT generate_series(1001, 2000)');
    assert.equal((await c.cli(['stop', 'pg3'])).code, 0);
    rmSync(c.dataDir('pg3'), { recursive: true, force: true });
    const plan = await c.cli(['up', '--dry-run']);
    assert.match(
      plan.stdout,
      /clone pg3 from the backup repository \(pgbackrest restore --type=standby\), then stream from pg1/,
    );
    const up = await c.cli(['up']);
    assert.equal(up.code, 0, up.stderr);
    await c.sql('pg1', 'INSERT INTO t SELECT generate_series(2001, 2100)');
    await waitReplayed(c, 'pg1', ['pg3']);
    assert.equal(await count(c, 'pg3'), 2100);
    assert.equal((await c.status()).healthy, true);
  });

  it('`rejoin --from-backup` re-clones from the repository, not from the primary', async () => {
    const r = await c.cli(['rejoin', 'pg2', '--from-backup', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { method: string }).method, 'reclone');
    assert.match(r.stderr, /re-cloning pg2 from the backup repository: asked for with --from-backup/);
    await c.sql('pg1', 'INSERT INTO t SELECT generate_series(2101, 2200)');
    await waitReplayed(c, 'pg1', ['pg2']);
    assert.equal(await count(c, 'pg2'), 2200);
  });

  it('a former primary whose WAL its new primary removed rejoins without a re-clone: what it lacks comes from the archive', async () => {
    const promote = await c.cli(['promote', 'pg2', '--force', '--json']);
    assert.equal(promote.code, 0, promote.stderr);
    // pg1 is fenced and stopped; pg2 writes and checkpoints far past what pg1's slot may keep.
    for (let i = 0; i < 6; i++)
      await c.sql(
        'pg2',
        `INSERT INTO t SELECT generate_series(1, 20000) + 1000000 * ${i + 1}; SELECT pg_switch_wal(); CHECKPOINT`,
      );
    const [slot] = await c.sql<{ wal_status: string }>(
      'pg2',
      "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'pg1'",
    );
    assert.equal(slot?.wal_status, 'lost', 'the test needs pg2 to have removed WAL pg1 needs');
    const r = await c.cli(['rejoin', 'pg1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    // Without the archive the WAL pg1 needs is nowhere but in a fresh copy: a re-clone.
    assert.notEqual((JSON.parse(r.stdout) as { method: string }).method, 'reclone', r.stderr);
    await waitReplayed(c, 'pg2', ['pg1']);
    assert.equal(await count(c, 'pg1'), await count(c, 'pg2'));
  });
});

describe('a disaster: every data directory gone (issue 28)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made), {
    extraSpec: 'replication: { mode: sync, syncCount: 1 }\nbackup: {}\n',
    setUp: upCluster,
  });

  it('`restore --cluster` refuses while a node runs, then brings back every acknowledged commit the archive holds', async () => {
    await c.sql('pg1', 'CREATE TABLE t (id int PRIMARY KEY)');
    const b = await c.cli(['backup', '--type', 'full']);
    assert.equal(b.code, 0, b.stderr);
    // Each row its own acknowledged commit, in sync mode.
    for (let i = 1; i <= 200; i++) await c.sql('pg1', 'INSERT INTO t VALUES ($1)', [i]);
    const refused = await c.cli(['restore', '--cluster']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /E_DATA_DIR_IN_USE.*pg1, pg2, pg3 run/);
    assert.equal((await c.status()).healthy, true);

    // The archive's end: the primary's current segment, switched and archived.
    const [seg] = await c.sql<{ wal: string }>('pg1', 'SELECT pg_walfile_name(pg_switch_wal()) AS wal');
    await waitUntil(
      async () =>
        (
          await c.sql<{ ok: boolean }>('pg1', 'SELECT last_archived_wal >= $1 AS ok FROM pg_stat_archiver', [
            seg!.wal,
          ])
        )[0]?.ok === true,
      30_000,
      `${seg!.wal} archived`,
    );
    for (const n of ['pg1', 'pg2', 'pg3']) {
      await c.crash(n);
      rmSync(c.dataDir(n), { recursive: true, force: true });
    }
    const r = await c.cli(['restore', '--cluster', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { primary: string; replicas: string[]; timeline: number };
    assert.equal(out.primary, 'pg1');
    assert.deepEqual([...out.replicas].sort(), ['pg2', 'pg3']);
    assert.ok(out.timeline >= 2);
    assert.equal(await count(c, 'pg1'), 200);
    await c.sql('pg1', 'INSERT INTO t VALUES (201)');
    await waitReplayed(c, 'pg1', ['pg2', 'pg3']);
    assert.equal(await count(c, 'pg3'), 201);
    assert.equal((await c.status()).healthy, true);
    // The restored primary keeps no recovery target: as a standby later it must replay everything.
    const auto = await c.sql<{ n: string }>(
      'pg1',
      "SELECT count(*) AS n FROM pg_file_settings WHERE name LIKE 'recovery_target%' AND sourcefile LIKE '%auto.conf'",
    );
    assert.equal(Number(auto[0]?.n), 0);
  });
});
