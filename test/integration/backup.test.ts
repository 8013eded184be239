import assert from 'node:assert/strict';
import { chmodSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { queryRestored } from '../helpers/restored.js';
import { TestCluster, clusterForSuite, upCluster, waitUntil } from '../helpers/test-cluster.js';

/** Every row of `table` on a restored server, in order. */
const rowsOn = async (c: TestCluster, port: number, table = 't'): Promise<number[]> =>
  (await queryRestored<{ id: number }>(c, port, `SELECT id FROM ${table} ORDER BY id`)).map((r) => r.id);

interface Restored {
  dataDir: string;
  port: number;
  pid: number;
  timeline: number;
  stoppedAt: string | null;
  backup: { label: string };
}

const archiveFiles = (c: TestCluster) => {
  const dir = join(c.base, 'state', 'backup', 'repo', 'archive', 'test');
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(d, e.name)) : [e.name],
    );
  return walk(dir);
};

describe('backups and point-in-time recovery with pgBackRest (issue 28)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), {
    extraSpec: 'backup:\n  retention: { full: 2 }\n',
    setUp: upCluster,
  });

  it('`up` makes the stanza, every node archives through pgBackRest, and a second `up` changes nothing', async () => {
    for (const node of ['pg1', 'pg2']) {
      const [row] = await c.sql<{ mode: string; command: string }>(
        node,
        "SELECT current_setting('archive_mode') AS mode, current_setting('archive_command') AS command",
      );
      assert.equal(row?.mode, 'on');
      assert.match(
        row?.command ?? '',
        new RegExp(`pgbackrest --config='.*/backup/conf/${node}\\.conf' --stanza=test archive-push %p`),
      );
    }
    // `up` had pgBackRest's check switch and archive a segment: the archive is not empty.
    assert.ok(archiveFiles(c).some((f) => /^000000010000000000000\w{3}-[0-9a-f]{40}/.test(f)));
    const again = await c.cli(['up', '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { changed: boolean }).changed, false);
    // No secret in pgBackRest's configuration.
    const conf = readFileSync(join(c.base, 'state', 'backup', 'conf', 'pg1.conf'), 'utf8');
    assert.ok(!conf.includes(c.superuserPassword()));
  });

  it('restores exactly the commits up to a time, or an LSN, and brings back a dropped table', async () => {
    await c.sql('pg1', 'CREATE TABLE t (id int PRIMARY KEY)');
    await c.sql('pg1', 'INSERT INTO t SELECT generate_series(1, 100)');
    const full = await c.cli(['backup', '--type', 'full', '--json']);
    assert.equal(full.code, 0, full.stderr);
    assert.match(full.stderr, /backup: 100% copied/);
    await c.sql('pg1', 'INSERT INTO t SELECT generate_series(101, 200)');
    const incr = await c.cli(['backup', '--json']);
    assert.equal(incr.code, 0, incr.stderr);
    const fullLabel = (JSON.parse(full.stdout) as { backup: { label: string } }).backup.label;
    const incrBackup = (JSON.parse(incr.stdout) as { backup: { type: string; prior: string } }).backup;
    assert.equal(incrBackup.type, 'incr');
    assert.equal(incrBackup.prior, fullLabel);

    // Three moments: after 300 rows, after 400 rows, after the table was dropped.
    await c.sql('pg1', 'INSERT INTO t SELECT generate_series(201, 300)');
    const [at300] = await c.sql<{ t: string; lsn: string }>(
      'pg1',
      "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t, pg_current_wal_lsn()::text AS lsn",
    );
    await new Promise((r) => setTimeout(r, 50));
    await c.sql('pg1', 'INSERT INTO t SELECT generate_series(301, 400)');
    await c.sql('pg1', 'DROP TABLE t');

    const byTime = await c.cli(['restore', '--to', at300!.t, '--into', join(c.base, 'by-time'), '--json']);
    assert.equal(byTime.code, 0, byTime.stderr);
    const r1 = JSON.parse(byTime.stdout) as Restored;
    assert.equal(r1.backup.label.startsWith(fullLabel), true);
    assert.deepEqual(
      await rowsOn(c, r1.port),
      Array.from({ length: 300 }, (_, i) => i + 1),
    );
    assert.match(r1.stoppedAt ?? '', /recovery stopping before commit/);

    const byLsn = await c.cli(['restore', '--lsn', at300!.lsn, '--into', join(c.base, 'by-lsn'), '--json']);
    assert.equal(byLsn.code, 0, byLsn.stderr);
    assert.deepEqual((await rowsOn(c, (JSON.parse(byLsn.stdout) as Restored).port)).length, 300);

    // The end of the archive: the table is gone there too, as on the cluster.
    const latest = await c.cli(['restore', '--latest', '--into', join(c.base, 'latest'), '--json']);
    assert.equal(latest.code, 0, latest.stderr);
    await assert.rejects(
      rowsOn(c, (JSON.parse(latest.stdout) as Restored).port),
      /relation "t" does not exist/,
    );

    // The restored servers took a timeline of their own, and archived none of it into the cluster's repository.
    assert.ok(r1.timeline >= 2);
    assert.ok(!archiveFiles(c).some((f) => /^0000000[2-9]/.test(f)), archiveFiles(c).join(' '));
    const list = await c.cli(['backups', '--json']);
    assert.equal(list.code, 0, list.stdout);
    const listed = JSON.parse(list.stdout) as { backups: { type: string }[]; gaps: unknown[] };
    assert.deepEqual(
      listed.backups.map((b) => b.type),
      ['full', 'incr'],
    );
    assert.deepEqual(listed.gaps, []);
    const st = JSON.parse((await c.cli(['status', '--json'])).stdout) as {
      backup: { last: { label: string; type: string; ageSeconds: number } };
    };
    assert.equal(st.backup.last.type, 'incr');
    assert.ok(st.backup.last.ageSeconds >= 0 && st.backup.last.ageSeconds < 300);
    assert.match((await c.cli(['status'])).stdout, /backups: the last, .* \(incr\), ended/);
  });

  it('refuses a target before the first backup, a time without its zone, and a node’s directory; restores nothing', async () => {
    const into = join(c.base, 'too-early');
    const early = await c.cli(['restore', '--to', '2001-01-01 00:00:00+00', '--into', into]);
    assert.equal(early.code, 1);
    assert.match(early.stderr, /E_RESTORE_TARGET.*before the end of the first backup/);
    assert.equal(existsSync(into), false);
    const noZone = await c.cli(['restore', '--to', '2026-12-07 10:00:00', '--into', into]);
    assert.equal(noZone.code, 2);
    assert.match(noZone.stderr, /E_USAGE.*with its zone/);
    const overNode = await c.cli(['restore', '--latest', '--into', c.dataDir('pg2')]);
    assert.equal(overNode.code, 1);
    assert.match(overNode.stderr, /overlaps pg2's data directory/);
    assert.equal((await c.status()).healthy, true);
  });
});

describe('an archive that fails (issue 28)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1'], (made) => (c = made), { extraSpec: 'backup: {}\n', setUp: upCluster });

  it('shows in status and backups with the failing segment, and clears once archiving works again', async () => {
    const archive = join(c.base, 'state', 'backup', 'repo', 'archive', 'test');
    chmodSync(archive, 0o000);
    try {
      await c.sql('pg1', 'CREATE TABLE t AS SELECT 1 AS id');
      const [seg] = await c.sql<{ wal: string }>('pg1', 'SELECT pg_walfile_name(pg_switch_wal()) AS wal');
      await waitUntil(async () => !(await c.status()).healthy, 20_000, 'status to see the failing archiver');
      const st = await c.status();
      assert.ok(
        st.warnings.some((w) => w.includes(`pg1 cannot archive ${seg!.wal}`)),
        st.warnings.join('\n'),
      );
      const listed = await c.cli(['backups']);
      assert.equal(listed.code, 3);
      assert.match(listed.stdout, new RegExp(`warning: archiving ${seg!.wal} is failing`));
    } finally {
      chmodSync(archive, 0o750);
    }
    await c.sql('pg1', 'INSERT INTO t VALUES (2); SELECT pg_switch_wal()');
    await waitUntil(async () => (await c.status()).healthy, 30_000, 'the archiver to catch up');
    assert.equal((await c.cli(['backups'])).code, 0);
  });
});

describe('a backup taken from a replica (backup.fromReplica)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), {
    extraSpec: 'backup:\n  fromReplica: true\n',
    setUp: upCluster,
  });

  it('copies the files from the streaming replica, and restores', async () => {
    await c.sql('pg1', 'CREATE TABLE t AS SELECT generate_series(1, 50) AS id');
    const b = await c.cli(['backup', '--json']);
    assert.equal(b.code, 0, b.stderr);
    const made = JSON.parse(b.stdout) as { copiedFrom: string; primary: string; backup: { type: string } };
    assert.equal(made.primary, 'pg1');
    assert.equal(made.copiedFrom, 'pg2');
    assert.equal(made.backup.type, 'full');
    const r = await c.cli(['restore', '--latest', '--into', join(c.base, 'restored'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await rowsOn(c, (JSON.parse(r.stdout) as Restored).port)).length, 50);
  });
});

describe('a repository pgrepl must not use', () => {
  it('refuses a repository whose parent does not exist, before anything is made', async () => {
    const c = await TestCluster.create(['pg1'], 'backup:\n  repo: { path: /nonexistent-pgrepl-disk/repo }\n');
    try {
      const up = await c.cli(['up']);
      assert.equal(up.code, 1);
      assert.match(up.stderr, /E_BACKUP_REPO.*parent directory \/nonexistent-pgrepl-disk does not exist/);
      assert.equal(existsSync(c.dataDir('pg1')), false);
    } finally {
      await c.cleanup();
    }
  });

  it('refuses a stanza of another cluster of the same name, before anything is made', async () => {
    const first = await TestCluster.create(['pg1'], 'backup: {}\n');
    try {
      await upCluster(first);
      const repo = join(first.base, 'state', 'backup', 'repo');
      const second = await TestCluster.create(['pg1'], `backup:\n  repo: { path: ${repo} }\n`);
      try {
        const up = await second.cli(['up']);
        assert.equal(up.code, 1);
        assert.match(up.stderr, /E_STANZA_MISMATCH.*already has a stanza test of another database/);
        assert.equal(existsSync(second.dataDir('pg1')), false);
      } finally {
        await second.cleanup();
      }
    } finally {
      await first.cleanup();
    }
  });
});
