import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  assertNoLeakedServers,
  clusterForSuite,
  TestCluster,
  upCluster,
  waitUntil,
} from '../helpers/test-cluster.js';
import type { NodeDef, StatusJson } from '../helpers/test-cluster.js';
import { Writer } from '../helpers/writer.js';

async function ids(c: TestCluster, node: string): Promise<Set<number>> {
  const rows = await c.sql<{ id: number }>(node, 'SELECT id FROM writes');
  return new Set(rows.map((r) => r.id));
}

function writerFor(c: TestCluster): Writer {
  return new Writer(
    c.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    c.superuserPassword(),
    5,
  );
}

async function upWithTable(c: TestCluster): Promise<void> {
  await upCluster(c);
  await c.sql('pg1', 'CREATE TABLE writes (id int PRIMARY KEY, at timestamptz DEFAULT now())');
}

/** Stops a node's server cleanly (SIGINT to its postmaster: a fast shutdown) and waits until it is gone. */
async function stopCleanly(c: TestCluster, name: string): Promise<void> {
  process.kill(c.postmasterPid(name) as number, 'SIGINT');
  await waitUntil(() => c.postmasterPid(name) === null, 10_000, `${name} to stop`);
}

/** Moves the primary pg1 on by `n` WAL segments, a row written in each. */
async function switchSegments(c: TestCluster, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await c.sql('pg1', 'INSERT INTO writes (id) VALUES ($1)', [i]);
    await c.sql('pg1', 'SELECT pg_switch_wal()');
  }
}

describe('switchover', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made), { setUp: upWithTable });

  it('loses no acknowledged commit of a writer running through it, and the old primary follows the new one', async () => {
    const w = writerFor(c);
    w.start();
    await waitUntil(() => w.acked.length >= 20, 10_000, 'the writer to get going');
    const r = await c.cli(['switchover', '--to', 'pg2', '--json']);
    await waitUntil(
      () => w.acked.length >= 40 && w.acked.at(-1) !== undefined,
      10_000,
      'writes on the new primary',
    );
    await w.stop();
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as {
      newPrimary: string;
      oldPrimaryRejoined: boolean;
      writeGapMs: number;
    };
    assert.equal(result.newPrimary, 'pg2');
    assert.equal(result.oldPrimaryRejoined, true);
    const onNew = await ids(c, 'pg2');
    const missing = w.acked.filter((id) => !onNew.has(id));
    assert.deepEqual(missing, [], 'every acknowledged row is on the new primary');
    const s = await c.status();
    assert.equal(s.primary, 'pg2');
    assert.equal(s.healthy, true, s.warnings.join('\n'));
    const pg1 = s.nodes.find((n) => n.name === 'pg1');
    assert.equal(pg1?.role, 'replica');
    assert.equal(pg1?.upstream, `127.0.0.1:${c.port('pg2')}`);
    assert.equal(s.nodes.find((n) => n.name === 'pg3')?.upstream, `127.0.0.1:${c.port('pg2')}`);
  });

  it('switches back', async () => {
    const r = await c.cli(['switchover', '--to', 'pg1']);
    assert.equal(r.code, 0, r.stderr);
    const s = await c.status();
    assert.equal(s.primary, 'pg1');
    assert.equal(s.healthy, true, s.warnings.join('\n'));
  });

  it('refuses a target that is not a streaming replica, and changes nothing', async () => {
    const r = await c.cli(['switchover', '--to', 'pg1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_IS_PRIMARY: pg1 is already the primary; nothing was changed/);
    assert.equal((await c.status()).primary, 'pg1');
  });

  it('recovers from pgrepl being killed between two steps: resume finishes it', async () => {
    const r = await c.cli(['switchover', '--to', 'pg3'], { env: { PGREPL_CRASH_AT: 'after:stop pg1' } });
    assert.notEqual(r.code, 0, 'pgrepl died half-way');
    const mid = await c.status();
    assert.ok(mid.nodes.filter((n) => n.role === 'primary').length <= 1, 'never two primaries');
    assert.equal(mid.healthy, false);
    assert.match(
      mid.warnings[0] ?? '',
      /^`pgrepl switchover --to pg3` was interrupted during step .*pgrepl resume/,
    );
    const blocked = await c.cli(['up']);
    assert.equal(blocked.code, 1);
    assert.match(
      blocked.stderr,
      /E_INTERRUPTED_OPERATION: `pgrepl switchover --to pg3` .* after checkpoint pg1, stop pg1.*pgrepl resume/s,
    );
    const resumed = await c.cli(['resume']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const s = await c.status();
    assert.equal(s.primary, 'pg3');
    assert.equal(s.healthy, true, s.warnings.join('\n'));
  });

  it('or abandon undoes it while the target is not promoted yet', async () => {
    const r = await c.cli(['switchover', '--to', 'pg2'], { env: { PGREPL_CRASH_AT: 'after:stop pg3' } });
    assert.notEqual(r.code, 0);
    const undo = await c.cli(['abandon']);
    assert.equal(undo.code, 0, undo.stderr);
    const s = await c.status();
    assert.equal(s.primary, 'pg3');
    assert.equal(s.healthy, true, s.warnings.join('\n'));
  });
});

describe('sync mode: failover after the primary is killed', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made), { setUp: upWithTable });

  it('refuses to require more synchronous replicas than stream', async () => {
    const r = await c.cli(['set-mode', 'sync', '--count', '3']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /E_TOO_FEW_REPLICAS: sync --count 3 needs 3 streaming replica\(s\) and 2 stream now/,
    );
  });

  it('sets FIRST 1 and shows each replica’s sync state', async () => {
    const r = await c.cli(['set-mode', 'sync']);
    assert.equal(r.code, 0, r.stderr);
    const [setting] = await c.sql<{ v: string }>(
      'pg1',
      "SELECT current_setting('synchronous_standby_names') AS v",
    );
    assert.equal(setting?.v, 'FIRST 1 ("pg2", "pg3")');
    await waitUntil(
      async () => (await c.status()).nodes.find((n) => n.name === 'pg2')?.syncState === 'sync',
      10_000,
      'pg2 to be sync',
    );
    assert.equal((await c.status()).nodes.find((n) => n.name === 'pg3')?.syncState, 'potential');
  });

  it('loses no acknowledged commit when the primary dies under writes and promote --auto takes over', async () => {
    const w = writerFor(c);
    w.start();
    await waitUntil(() => w.acked.length >= 50, 15_000, 'acknowledged writes');
    await c.crash('pg1');
    const ackedBefore = [...w.acked];
    const r = await c.cli(['promote', '--auto', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { newPrimary: string; followers: string[] };
    await waitUntil(() => w.acked.length > ackedBefore.length + 10, 15_000, 'writes on the new primary');
    await w.stop();
    const onNew = await ids(c, result.newPrimary);
    assert.deepEqual(
      w.acked.filter((id) => !onNew.has(id)),
      [],
      'zero acknowledged commits lost',
    );
    const s = await c.status();
    const other = result.newPrimary === 'pg2' ? 'pg3' : 'pg2';
    assert.deepEqual(result.followers, [other]);
    assert.equal(s.nodes.find((n) => n.name === other)?.state, 'streaming');
    assert.equal(s.nodes.find((n) => n.name === 'pg1')?.role, 'down');
    // Checkpointed on its new timeline before promote returned: rewindable should it die now.
    const [cp] = await c.sql<{ checkpointed: number; current: number }>(
      result.newPrimary,
      `SELECT (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpointed,
              ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS current`,
    );
    assert.equal(cp?.checkpointed, cp?.current);
  });

  it('never starts the fenced old primary again with start or up', async () => {
    const r = await c.cli(['start']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /pg1 was fenced by a failover and stays stopped; `pgrepl rejoin pg1`/);
    assert.equal(c.postmasterPid('pg1'), null);
    // It creates nothing, and says so: the role and slot steps ensure, and tell what they found.
    assert.doesNotMatch(r.stderr, /create the replication role|create physical slot/);
    // The success line names only what streams, and says why pg1 does not (issue 11).
    assert.doesNotMatch(r.stdout, /pg1[^\n]*streaming/);
    assert.match(r.stdout, /\npg1 was fenced by a failover and stays stopped/);
    const one = await c.cli(['start', 'pg1']);
    assert.equal(one.code, 1);
    assert.match(
      one.stderr,
      /E_LEFT_STOPPED: pg1 was fenced by a failover and stays stopped; `pgrepl rejoin pg1`/,
    );
    assert.equal(c.postmasterPid('pg1'), null);
  });

  it('rejoins it as a replica of the new primary', async () => {
    const r = await c.cli(['rejoin', 'pg1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = await c.status();
    assert.equal(s.nodes.find((n) => n.name === 'pg1')?.state, 'streaming');
    assert.equal(s.healthy, true, s.warnings.join('\n'));
  });

  it('rejoin of a replica that already streams changes nothing, not even its process (issue 11)', async () => {
    const pid = c.postmasterPid('pg1');
    const r = await c.cli(['rejoin', 'pg1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { method: string }).method, 'none needed');
    assert.match(r.stderr, /pg1 already streams from pg\d on its timeline/);
    assert.equal(c.postmasterPid('pg1'), pid, 'it was not stopped');
  });

  it('remembers the mode change, the promotion and the rejoin in history (issue 11)', async () => {
    const r = await c.cli(['history', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const entries = JSON.parse(r.stdout) as {
      op: string;
      node: string;
      from: string | null;
      timeline: number | null;
      lsn: string | null;
      durationMs: number;
      reason: string;
      at: string;
    }[];
    assert.deepEqual(
      entries.map((e) => e.op),
      ['set-mode', 'promote', 'rejoin'],
    );
    const [mode, promote, rejoin] = entries;
    assert.match(mode?.reason ?? '', /^sync 1: each commit waits for 1 of the 2 streaming replica/);
    assert.equal(promote?.from, 'pg1');
    assert.equal(promote?.timeline, 2, 'the promoted primary is on a new timeline');
    assert.match(promote?.lsn ?? '', /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.deepEqual([rejoin?.node, rejoin?.from, rejoin?.timeline], ['pg1', promote?.node, 2]);
    assert.ok(entries.every((e) => e.durationMs >= 0 && !Number.isNaN(Date.parse(e.at))));
    const human = await c.cli(['history']);
    assert.match(
      human.stdout,
      new RegExp(`promote +${promote?.node} became primary \\(was pg1\\), timeline 2 at `),
    );
  });

  it('shows a node’s server log with logs NODE -n N (issue 11)', async () => {
    const r = await c.cli(['logs', 'pg1', '-n', '3']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.ok(
      lines.every((l) => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.test(l)),
      r.stdout,
    );
    let seen = '';
    let pid = 0;
    const follow = c.cli(['logs', 'pg1', '-n', '1', '-f'], {
      onSpawn: (p) => (pid = p),
      onStdout: (out) => (seen = out),
    });
    try {
      // Something pg1 is sure to log now: a login with a wrong password.
      // Its last line printed: from here on, it follows.
      await waitUntil(() => seen.endsWith('\n'), 10_000, 'logs -f to print the last line');
      const wrong = new pg.Client({
        host: '127.0.0.1',
        port: c.port('pg1'),
        user: 'postgres',
        password: 'wrong',
      });
      wrong.on('error', () => undefined);
      await wrong.connect().catch(() => undefined);
      await waitUntil(
        () => /password authentication failed/.test(seen),
        20_000,
        'logs -f to show what pg1 logs next',
      );
    } finally {
      if (pid !== 0) process.kill(pid, 'SIGTERM');
    }
    const followed = await follow;
    const [last, ...next] = followed.stdout.trimEnd().split('\n');
    assert.doesNotMatch(last ?? '', /password authentication failed/, 'the old line came first');
    assert.ok(
      next.some((l) => /password authentication failed/.test(l)),
      followed.stdout,
    );
  });
});

describe('async mode: failover with commits the replicas never got', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made), {
    setUp: async (made) => {
      await upWithTable(made);
      await made.sql('pg1', 'INSERT INTO writes (id) SELECT generate_series(1, 100)');
    },
  });

  it('refuses to promote while the primary answers', async () => {
    const r = await c.cli(['promote', 'pg2']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /E_PRIMARY_RUNNING: pg1 is the primary and accepts writes\. For a planned change use `pgrepl switchover --to pg2`/,
    );
    assert.equal((await c.status()).primary, 'pg1');
  });

  it('promotes only one of two concurrent promotes', async () => {
    await waitUntil(
      async () => (await ids(c, 'pg2')).size === 100 && (await ids(c, 'pg3')).size === 100,
      10_000,
      'replicas to catch up',
    );
    // Freeze the WAL senders (by PID), then commit: these rows exist only on pg1.
    const senders = await c.sql<{ pid: number }>('pg1', 'SELECT pid FROM pg_stat_replication');
    for (const s of senders) process.kill(s.pid, 'SIGSTOP');
    await c.sql('pg1', 'INSERT INTO writes (id) SELECT generate_series(101, 150)');
    await c.crash('pg1');
    const [a, b] = await Promise.all([c.cli(['promote', '--auto']), c.cli(['promote', '--auto'])]);
    assert.equal([a, b].filter((r) => r.code === 0).length, 1, `${a.stderr}\n${b.stderr}`);
    // The winner read pg1's WAL and says what only pg1 has: the one commit of the 50 rows.
    assert.match(
      [a, b].find((r) => r.code === 0)?.stdout ?? '',
      /was behind pg1, which alone has WAL [0-9A-F]+\/[0-9A-F]+–[0-9A-F]+\/[0-9A-F]+ \(\d+ bytes\) with 1 commit\(s\)/,
    );
    assert.match(
      [a, b].find((r) => r.code !== 0)?.stderr ?? '',
      /E_LOCKED|E_PRIMARY_RUNNING|E_NOT_A_REPLICA/,
    );
    const s = await c.status();
    assert.equal(s.nodes.filter((n) => n.role === 'primary').length, 1);
  });

  it('rejoins the old primary with pg_rewind and lists the commits only it had', async () => {
    const primary = (await c.status()).primary as string;
    const r = await c.cli(['rejoin', 'pg1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pg1 streams from pg\d again \(rewind, [\d.]+ s, \d+ MB copied\)/);
    assert.match(
      r.stdout,
      /thrown away, it existed only on pg1: WAL [0-9A-F]+\/[0-9A-F]+–[0-9A-F]+\/[0-9A-F]+ \(\d+ bytes\) with 1 commit\(s\)/,
    );
    const onPg1 = await ids(c, 'pg1');
    assert.equal(onPg1.size, 100, 'the rows only pg1 had are gone from it: it matches its new primary');
    assert.equal((await ids(c, primary)).size, 100);
    const s = await c.status();
    assert.equal(s.healthy, true, s.warnings.join('\n'));
  });

  it('finishes a rejoin that pgrepl was killed in, through resume', async () => {
    // Stopped, it needs a rejoin: one of a replica that streams does nothing.
    assert.equal((await c.cli(['stop', 'pg1'])).code, 0);
    const r = await c.cli(['rejoin', 'pg1'], { env: { PGREPL_CRASH_AT: 'after:stop pg1' } });
    assert.notEqual(r.code, 0);
    assert.equal(c.postmasterPid('pg1'), null);
    const blocked = await c.cli(['rejoin', 'pg1']);
    assert.match(blocked.stderr, /E_INTERRUPTED_OPERATION: `pgrepl rejoin pg1`/);
    const resumed = await c.cli(['resume']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal((await c.status()).healthy, true);
  });

  it('after a kill that followed pg_rewind, resume starts the node without rewinding it again', async () => {
    // A replica promoted by hand and stopped again forked off the primary: it needs pg_rewind.
    assert.equal((await c.cli(['stop', 'pg1'])).code, 0);
    c.handStart('pg1', { asPrimary: false });
    await c.sql('pg1', 'SELECT pg_promote()');
    c.handStop('pg1');
    const r = await c.cli(['rejoin', 'pg1'], { env: { PGREPL_CRASH_AT: 'after:rewind pg1' } });
    assert.notEqual(r.code, 0);
    assert.equal(c.postmasterPid('pg1'), null);
    const resumed = await c.cli(['resume', '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);
    // A resumed rejoin tells its journaled steps like a first run does, so a second pg_rewind would show.
    assert.match(resumed.stderr, /resuming `pgrepl rejoin pg1` from step "rewind pg1"/);
    assert.doesNotMatch(resumed.stderr, /done: rewind pg1/, 'pg_rewind ran a second time');
    const result = JSON.parse(resumed.stdout) as { method: string; rewindCopiedMb: number | null };
    assert.equal(result.method, 'rewind');
    assert.equal(result.rewindCopiedMb, null, 'nothing was copied by this run: it did not rewind');
    assert.equal((await c.status()).healthy, true);
  });

  it('after a kill during pg_rewind, resume re-clones the node instead of trusting its directory', async () => {
    const primary = (await c.status()).primary as string;
    // Stopped, it needs a rejoin: one of a replica that streams does nothing.
    assert.equal((await c.cli(['stop', 'pg1'])).code, 0);
    const r = await c.cli(['rejoin', 'pg1'], { env: { PGREPL_CRASH_AT: `after:slot pg1 on ${primary}` } });
    assert.notEqual(r.code, 0);
    // What a kill while pg_rewind runs leaves behind: the journal's current step is the rewind, not done.
    const journalFile = join(c.base, 'state', 'journal.json');
    const journal = JSON.parse(readFileSync(journalFile, 'utf8')) as { step: string; done: string[] };
    writeFileSync(journalFile, JSON.stringify({ ...journal, step: 'rewind pg1' }));
    const resumed = await c.cli(['resume', '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const result = JSON.parse(resumed.stdout) as {
      method: string;
      recloneReason: string;
      movedAside: string;
    };
    assert.equal(result.method, 'reclone');
    assert.match(result.recloneReason, /killed while pg_rewind ran/);
    assert.ok(existsSync(join(result.movedAside, 'PG_VERSION')), 'the old directory is kept aside');
    rmSync(result.movedAside, { recursive: true, force: true });
    assert.equal((await c.status()).healthy, true);
  });

  it('re-clones on request, moving the old data directory aside', async () => {
    const r = await c.cli(['rejoin', 'pg1', '--reclone']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\(reclone/);
    const aside = readdirSync(dirname(c.dataDir('pg1'))).filter((d) => d.startsWith('pg1.pgrepl-old-'));
    assert.equal(aside.length, 1);
    const old = join(dirname(c.dataDir('pg1')), aside[0] as string);
    assert.ok(existsSync(join(old, 'PG_VERSION')));
    const st = (await c.status()) as StatusJson & { notes: string[] };
    assert.equal(st.healthy, true, 'an old copy is no health problem');
    assert.deepEqual(st.notes, [
      `pg1: 1 old data directory that re-clones moved aside (${old}): \`pgrepl clean --yes\` removes it`,
    ]);
    // clean lists it with its size, and removes it only with --yes (issue 11).
    const list = await c.cli(['clean']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(
      list.stdout,
      new RegExp(`^   ${old.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(pg1, [\\d.]+ MB\\)\n`),
    );
    assert.ok(existsSync(old), 'listing removes nothing');
    // destroy, which deletes only what pgrepl created, keeps it and says how to remove it.
    const destroy = await c.cli(['destroy', '--yes']);
    assert.equal(destroy.code, 0, destroy.stderr);
    assert.ok(
      destroy.stdout.includes(
        `kept ${old}: an old copy a re-clone moved aside; \`pgrepl clean --yes\` removes it\n`,
      ),
      destroy.stdout,
    );
    assert.ok(existsSync(old));
    const clean = await c.cli(['clean', '--yes']);
    assert.equal(clean.code, 0, clean.stderr);
    assert.match(clean.stdout, /^removed .*pg1\.pgrepl-old-.*\nfreed [\d.]+ MB\n$/);
    assert.ok(!existsSync(old));
    assert.equal((await c.cli(['clean'])).stdout, 'no old data directory to clean\n');
  });
});

describe('failover of a primary that wrote nothing its replicas lack', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), { setUp: upCluster });

  it('says the new primary has everything, and rejoins the old one', async () => {
    await c.crash('pg1');
    const p = await c.cli(['promote', '--auto']);
    assert.equal(p.code, 0, p.stderr);
    // The old primary's WAL may end where the next segment would begin: that file does not exist.
    assert.match(p.stdout, /pg2 had everything pg1 wrote/);
    const r = await c.cli(['rejoin', 'pg1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await c.status()).healthy, true);
  });
});

describe('promote --force with a primary that hangs', () => {
  let c: TestCluster;
  let hung: number;
  before(async () => {
    c = await TestCluster.create(['pg1', 'pg2']);
    await upWithTable(c);
    hung = c.postmasterPid('pg1') as number;
    process.kill(hung, 'SIGSTOP'); // it runs, holds its port, and answers nothing
  });
  after(async () => {
    try {
      process.kill(hung, 'SIGCONT');
    } catch {
      // fenced: already gone
    }
    await c.cleanup();
    assertNoLeakedServers();
  });

  it('is refused without --force', async () => {
    const r = await c.cli(['promote', 'pg2']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /E_PRIMARY_UNREACHABLE: pg1 still runs but does not answer; it must be stopped first: add --force/,
    );
  });

  it('fences it by killing its process group, then promotes', async () => {
    const r = await c.cli(['promote', 'pg2', '--force']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /pg1 did not stop in 10 s; killed it/);
    assert.equal(c.postmasterPid('pg1'), null);
    const s = await c.status();
    assert.equal(s.primary, 'pg2');
    await c.sql('pg2', 'INSERT INTO writes (id) VALUES (1)');
  });
});

describe('rejoin of a replica the primary no longer holds WAL for', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made), { setUp: upWithTable });

  it('re-clones it, saying why, instead of waiting for WAL that is gone', async () => {
    // pg3 stops cleanly and loses its slot; the primary then moves on by several WAL segments.
    await stopCleanly(c, 'pg3');
    await c.sql('pg1', "SELECT pg_drop_replication_slot('pg3')");
    await switchSegments(c, 4);
    await c.sql('pg1', 'CHECKPOINT');
    await c.sql('pg1', 'CHECKPOINT');
    const r = await c.cli(['rejoin', 'pg3', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as {
      method: string;
      recloneReason: string;
      movedAside: string | null;
    };
    assert.equal(result.method, 'reclone');
    assert.match(
      result.recloneReason,
      /pg1, which no longer holds the WAL it needs \("requested WAL segment \S+ has already been removed"\)/,
    );
    assert.ok(result.movedAside !== null && existsSync(result.movedAside), 'the old directory is kept');
    const s = await c.status();
    assert.equal(s.nodes.find((n) => n.name === 'pg3')?.state, 'streaming');
    assert.equal(s.healthy, true, s.warnings.join('\n'));
  });
});

describe('rejoin of a replica whose slot max_slot_wal_keep_size invalidated', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), {
    setUp: upWithTable,
    extraSpec: 'settings:\n  max_slot_wal_keep_size: 32MB\n',
  });

  it('re-clones it and leaves it streaming through a working slot', async () => {
    await stopCleanly(c, 'pg2');
    await switchSegments(c, 4);
    await c.sql('pg1', 'CHECKPOINT');
    const [slot] = await c.sql<{ wal_status: string }>(
      'pg1',
      "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'pg2'",
    );
    assert.equal(slot?.wal_status, 'lost', 'the test needs the slot invalidated');
    assert.ok(
      (await c.status()).warnings.includes(
        'slot pg2 on pg1 lost WAL its replica needs: `pgrepl rejoin pg2` re-clones it',
      ),
    );
    // start does not wait a minute for WAL that is gone: it says so at once (issue 11).
    const start = await c.cli(['start']);
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stderr, /pg2 stays stopped: its slot on pg1 lost WAL it needs/);
    assert.equal(c.postmasterPid('pg2'), null);
    const r = await c.cli(['rejoin', 'pg2', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { method: string }).method, 'reclone');
    const s = await c.status();
    assert.equal(s.nodes.find((n) => n.name === 'pg2')?.state, 'streaming');
    assert.equal(s.healthy, true, s.warnings.join('\n'));
  });
});

describe('a primary whose data directory was moved while it runs', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), {
    setUp: async (made) => {
      await upWithTable(made);
      // pg1's server keeps running from its directory while the spec now names another one: stopping
      // "pg1" would stop nothing, and its address still answers as the primary.
      (made.nodes[0] as NodeDef).dataDir = 'moved/pg1';
      made.writeSpec();
    },
  });

  it('is flagged by status', async () => {
    const r = await c.cli(['status', '--json']);
    assert.equal(r.code, 3);
    const s = JSON.parse(r.stdout) as { healthy: boolean; warnings: string[] };
    assert.equal(s.healthy, false);
    assert.ok(
      s.warnings.some((w) =>
        /^pg1's address 127\.0\.0\.1:\d+ is served by a PostgreSQL server that does not run from pg1's data directory \S+moved\/pg1/.test(
          w,
        ),
      ),
      s.warnings.join('\n'),
    );
  });

  it('makes promote refuse, even with --force and the old primary declared down, and promote nothing', async () => {
    const r = await c.cli(['promote', 'pg2', '--force', '--i-know-the-old-primary-is-down']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /E_SERVER_OUTSIDE_DATA_DIR: pg1's address .* is served by a PostgreSQL server that does not run from pg1's data directory/,
    );
    const [pg2] = await c.sql<{ standby: boolean }>('pg2', 'SELECT pg_is_in_recovery() AS standby');
    assert.equal(pg2?.standby, true, 'pg2 must not have been promoted');
    await c.sql('pg1', 'INSERT INTO writes (id) VALUES (1)');
  });

  it('makes up refuse and create nothing', async () => {
    const r = await c.cli(['up']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_SERVER_OUTSIDE_DATA_DIR: pg1's address/);
    assert.ok(!existsSync(join(c.base, 'moved')));
  });
});
