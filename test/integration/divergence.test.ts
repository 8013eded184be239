import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { clusterForSuite, upCluster, waitReplayed, waitUntil } from '../helpers/test-cluster.js';
import type { TestCluster } from '../helpers/test-cluster.js';

interface RejoinJson {
  method: string;
  recloneReason: string | null;
  discarded: { from: string; to: string | null; commits: { xid: number; lsn: string }[] } | null;
  movedAside: string | null;
}

async function upWithTable(c: TestCluster): Promise<void> {
  await upCluster(c);
  await c.sql('pg1', 'CREATE TABLE t (id int PRIMARY KEY, origin text)');
  await c.sql('pg1', "INSERT INTO t SELECT g, 'pg1' FROM generate_series(1, 10) g");
  await waitReplayed(
    c,
    'pg1',
    c.nodes.map((n) => n.name).filter((n) => n !== 'pg1'),
  );
}

/**
 * The trap of issue 9.1: a replica stopped, started by hand without standby.signal (PostgreSQL
 * runs it as a primary on the same timeline: no archive recovery, no new timeline), written to,
 * and stopped again. Returns the xid of its own commit.
 */
async function divergeOnSameTimeline(c: TestCluster, name: string): Promise<number> {
  c.handStop(name);
  c.handStart(name, { asPrimary: true });
  const [row] = await c.sql<{ xid: string }>(
    name,
    "INSERT INTO t VALUES (1000000 + (random() * 1000000)::int, 'only on the diverged node') RETURNING xmin::text AS xid",
  );
  c.handStop(name);
  return Number(row?.xid);
}

const rows = async (c: TestCluster, name: string) =>
  (await c.sql<{ id: number }>(name, 'SELECT id FROM t ORDER BY id')).map((r) => r.id);

describe('a replica that diverged on the primary’s own timeline (issue 9.1)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made), { setUp: upWithTable });

  it('ahead of the primary: status flags it, and rejoin re-clones it, listing its own commit', async () => {
    const xid = await divergeOnSameTimeline(c, 'pg2');
    const s = await c.status();
    assert.ok(
      s.warnings.some((w) => /^DIVERGED: pg2 its control file says "shut down": it ran as a primary/.test(w)),
      s.warnings.join('\n'),
    );
    const r = await c.cli(['rejoin', 'pg2', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as RejoinJson;
    assert.equal(j.method, 'reclone');
    assert.match(j.recloneReason ?? '', /pg2 diverged from pg1 without a timeline change/);
    assert.ok(
      j.discarded?.commits.some((x) => x.xid === xid),
      `its own commit ${xid} is listed: ${r.stdout}`,
    );
    assert.ok(j.movedAside !== null && existsSync(j.movedAside), 'its old directory is kept aside');
    assert.deepEqual(await rows(c, 'pg2'), await rows(c, 'pg1'), 'the row only pg2 had is gone from it');
    assert.equal((await c.status()).healthy, true);
  });

  it('behind the primary (it wrote more after the split): rejoin re-clones it too', async () => {
    const xid = await divergeOnSameTimeline(c, 'pg3');
    await c.sql('pg1', "INSERT INTO t SELECT g, 'pg1' FROM generate_series(11, 5000) g");
    await c.sql('pg1', 'SELECT pg_switch_wal()');
    await c.sql('pg1', "INSERT INTO t VALUES (5001, 'pg1')");
    const r = await c.cli(['rejoin', 'pg3', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as RejoinJson;
    assert.equal(j.method, 'reclone');
    assert.ok(
      j.discarded?.commits.some((x) => x.xid === xid),
      `its own commit ${xid} is listed: ${r.stdout}`,
    );
    assert.deepEqual(await rows(c, 'pg3'), await rows(c, 'pg1'));
  });

  it('a replica that was only stopped is rejoined as it is, not re-cloned', async () => {
    c.handStop('pg3');
    const r = await c.cli(['rejoin', 'pg3', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as RejoinJson).method, 'none needed');
  });

  it('resume of a rejoin killed before the rewind checks it the same way', async () => {
    await divergeOnSameTimeline(c, 'pg2');
    const killed = await c.cli(['rejoin', 'pg2'], { env: { PGREPL_CRASH_AT: 'after:slot pg2 on pg1' } });
    assert.notEqual(killed.code, 0);
    const r = await c.cli(['resume', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as RejoinJson).method, 'reclone');
    assert.deepEqual(await rows(c, 'pg2'), await rows(c, 'pg1'));
  });

  it('start and up leave such a node stopped, with standby.signal put back, and say why', async () => {
    await divergeOnSameTimeline(c, 'pg3');
    writeFileSync(join(c.dataDir('pg3'), 'standby.signal'), '');
    for (const cmd of ['start', 'up']) {
      const r = await c.cli([cmd]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /note: pg3 diverged from pg1: .*left stopped.*pgrepl rejoin pg3/);
      assert.equal(c.postmasterPid('pg3'), null, `${cmd} did not start pg3`);
    }
    // With every node down, the primary starts first and pg3's history is checked before its start.
    assert.equal((await c.cli(['down'])).code, 0);
    const r = await c.cli(['start']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_DIVERGED: pg3 diverged from pg1: .*It was not started/);
    assert.equal(c.postmasterPid('pg3'), null);
    // The primary runs now: the next start sees it at once and leaves pg3 stopped with a note.
    const again = await c.cli(['start']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /note: pg3 diverged from pg1/);
    assert.equal(c.postmasterPid('pg3'), null);
    const j = await c.cli(['rejoin', 'pg3']);
    assert.equal(j.code, 0, j.stderr);
    await waitUntil(async () => (await c.status()).healthy, 30_000, 'a healthy cluster');
    const aside = readdirSync(dirname(c.dataDir('pg3'))).filter((f) => f.startsWith('pg3.pgrepl-old-'));
    assert.ok(aside.length >= 1);
  });
});

describe('rejoin during a split brain (issue 9.7)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made), { setUp: upWithTable });

  it('refuses, shows each side, and with --keep rejoins the other side to the survivor', async () => {
    // pg3 is started by hand as a primary while pg1 still is one: both accept writes.
    c.handStop('pg3');
    c.handStart('pg3', { asPrimary: true });
    await c.sql('pg3', "INSERT INTO t VALUES (9001, 'pg3 alone')");
    const r = await c.cli(['rejoin', 'pg3']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /E_TWO_PRIMARIES: pg1 and pg3 both accept writes \(split brain\).*pgrepl rejoin pg3 --keep pg1/,
    );
    assert.match(r.stderr, /\n {2}pg1: timeline 1, WAL at \S+/);
    assert.match(r.stderr, /\n {2}pg3: timeline 1, WAL at \S+/);
    assert.notEqual(c.postmasterPid('pg3'), null, 'nothing was changed: pg3 still runs');
    const wrong = await c.cli(['rejoin', 'pg3', '--keep', 'pg2']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /--keep pg2: pg2 does not accept writes/);
    const kept = await c.cli(['rejoin', 'pg3', '--keep', 'pg1', '--json']);
    assert.equal(kept.code, 0, kept.stderr);
    assert.equal((JSON.parse(kept.stdout) as RejoinJson).method, 'reclone');
    assert.deepEqual(await rows(c, 'pg3'), await rows(c, 'pg1'));
    const s = await c.status();
    assert.equal(s.primary, 'pg1');
    assert.equal(s.healthy, true, s.warnings.join('\n'));
  });
});

describe('switchover: an old primary that wrote after its stop is not demoted as it is (issue 9.1)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), { setUp: upWithTable });

  it('after a kill past the promotion and a hand start of the old primary, resume leaves it fenced', async () => {
    const killed = await c.cli(['switchover', '--to', 'pg2'], {
      env: { PGREPL_CRASH_AT: 'after:slots on pg2' },
    });
    assert.equal(killed.signal, 'SIGKILL');
    // A container restart brings the old primary back as a primary, and a client writes to it.
    c.handStart('pg1', { asPrimary: true });
    await c.sql('pg1', "INSERT INTO t VALUES (7001, 'pg1 after its stop')");
    c.handStop('pg1');
    const r = await c.cli(['resume', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { oldPrimaryRejoined: boolean }).oldPrimaryRejoined, false);
    assert.match(r.stderr, /pg1 stays fenced: .*pgrepl rejoin pg1/);
    assert.equal(c.postmasterPid('pg1'), null, 'not started as a standby over its own writes');
    const j = await c.cli(['rejoin', 'pg1', '--json']);
    assert.equal(j.code, 0, j.stderr);
    assert.equal((await c.status()).healthy, true);
  });
});

describe('a primary that died with nothing unsent (issue 12: rejoin after a node death)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made), { setUp: upWithTable });

  it('is started as a replica of the new primary as it is: its WAL ends at the fork, so no pg_rewind', async () => {
    await c.crash('pg1');
    const promoted = await c.cli(['promote', 'pg2']);
    assert.equal(promoted.code, 0, promoted.stderr);
    const r = await c.cli(['rejoin', 'pg1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as RejoinJson;
    assert.equal(j.method, 'none needed', r.stderr);
    assert.equal(j.discarded, null);
    assert.doesNotMatch(r.stderr, /rewind pg1/, 'pg_rewind was not run');
    await c.sql('pg2', "INSERT INTO t VALUES (11, 'pg2')");
    await waitReplayed(c, 'pg2', ['pg1', 'pg3']);
    assert.deepEqual(await rows(c, 'pg1'), await rows(c, 'pg2'));
    const s = await c.status();
    assert.equal(s.healthy, true, s.warnings.join('\n'));
    assert.equal(s.nodes.find((n) => n.name === 'pg1')?.role, 'replica');
  });
});
