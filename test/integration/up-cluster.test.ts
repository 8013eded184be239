import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { clusterForSuite, freePort, waitUntil } from '../helpers/test-cluster.js';
import type { StatusJson, TestCluster } from '../helpers/test-cluster.js';

describe('pgrepl up: 1 primary + 2 replicas from nothing', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made));

  it('brings the cluster up and reports it healthy', async () => {
    const up = await c.cli(['up']);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /pg1 primary, pg2, pg3 streaming/);
    const st = await c.cli(['status', '--json']);
    assert.equal(st.code, 0, st.stdout + st.stderr);
    const status = JSON.parse(st.stdout) as StatusJson;
    assert.equal(status.healthy, true, status.warnings.join('\n'));
    assert.equal(status.primary, 'pg1');
    const byName = Object.fromEntries(status.nodes.map((n) => [n.name, n]));
    assert.equal(byName['pg1']?.role, 'primary');
    for (const r of ['pg2', 'pg3']) {
      assert.equal(byName[r]?.role, 'replica');
      assert.equal(byName[r]?.state, 'streaming');
      assert.equal(byName[r]?.upstream, `127.0.0.1:${c.port('pg1')}`);
      const slot = byName[r]?.slot;
      assert.deepEqual([slot?.name, slot?.active], [r, true]);
      // A streaming replica's slot holds back at most the WAL it has not confirmed yet: little.
      assert.equal(typeof slot?.retainedBytes, 'number');
      assert.ok(
        (slot?.retainedBytes ?? Infinity) < 16 * 1024 * 1024,
        `${r} retains ${slot?.retainedBytes} bytes`,
      );
    }
  });

  it('streams rows written on the primary to both replicas', async () => {
    await c.sql('pg1', 'CREATE TABLE orders (id int PRIMARY KEY, note text)');
    await c.sql('pg1', "INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 500) g");
    for (const r of ['pg2', 'pg3']) {
      await waitUntil(
        async () =>
          (await c.sql<{ n: string }>(r, 'SELECT count(*) AS n FROM orders').catch(() => [{ n: '0' }]))[0]
            ?.n === '500',
        10_000,
        `500 rows on ${r}`,
      );
      const [ro] = await c.sql<{ ro: boolean }>(r, 'SELECT pg_is_in_recovery() AS ro');
      assert.equal(ro?.ro, true, `${r} must be a read-only standby`);
    }
  });

  it('has each replica stream through its own active slot under its own application_name', async () => {
    const senders = await c.sql<{ application_name: string; state: string }>(
      'pg1',
      'SELECT application_name, state FROM pg_stat_replication ORDER BY 1',
    );
    assert.deepEqual(
      senders.map((s) => [s.application_name, s.state]),
      [
        ['pg2', 'streaming'],
        ['pg3', 'streaming'],
      ],
    );
    const slots = await c.sql<{ slot_name: string; active: boolean }>(
      'pg1',
      'SELECT slot_name, active FROM pg_replication_slots ORDER BY 1',
    );
    assert.deepEqual(
      slots.map((s) => [s.slot_name, s.active]),
      [
        ['pg2', true],
        ['pg3', true],
      ],
    );
    const [rx] = await c.sql<{ slot_name: string }>('pg2', 'SELECT slot_name FROM pg_stat_wal_receiver');
    assert.equal(rx?.slot_name, 'pg2');
  });

  it('puts in effect the settings it renders, from its own postgresql.conf on every node', async () => {
    for (const n of ['pg1', 'pg2', 'pg3']) {
      const rows = await c.sql<{ name: string; setting: string; sourcefile: string }>(
        n,
        `SELECT name, setting, sourcefile FROM pg_settings
          WHERE name IN ('wal_level', 'max_slot_wal_keep_size', 'password_encryption', 'cluster_name', 'port', 'data_checksums')`,
      );
      const s = Object.fromEntries(rows.map((r) => [r.name, r]));
      assert.equal(s['wal_level']?.setting, 'replica');
      assert.equal(s['password_encryption']?.setting, 'scram-sha-256');
      assert.equal(s['cluster_name']?.setting, n);
      assert.equal(s['port']?.setting, String(c.port(n)));
      assert.equal(
        s['data_checksums']?.setting,
        'on',
        'initdb must enable checksums so pg_rewind works later',
      );
      assert.notEqual(s['max_slot_wal_keep_size']?.setting, '-1', 'slots must not be able to fill the disk');
      assert.equal(s['wal_level']?.sourcefile, join(c.dataDir(n), 'postgresql.conf'));
    }
    const [conninfo] = await c.sql<{ v: string }>('pg3', "SELECT current_setting('primary_conninfo') AS v");
    assert.match(conninfo?.v ?? '', /application_name=pg3/);
    assert.match(conninfo?.v ?? '', /passfile=/);
    assert.doesNotMatch(conninfo?.v ?? '', /password=/, 'the password must come from the passfile');
  });

  it('keeps secrets in 0600 files and out of argv', async () => {
    for (const f of ['superuser.password', 'replication.password', 'replication.pgpass']) {
      assert.equal(statSync(join(c.base, 'state', 'secrets', f)).mode & 0o777, 0o600, f);
    }
    const running = await c.sql<{ query: string }>('pg1', 'SELECT query FROM pg_stat_activity');
    assert.ok(!running.some((r) => r.query.includes(c.replicationPassword())));
  });

  it('changes nothing on a second up', async () => {
    const pids = ['pg1', 'pg2', 'pg3'].map((n) => c.postmasterPid(n));
    const mtime = statSync(join(c.dataDir('pg2'), 'postgresql.conf')).mtimeMs;
    const dry = await c.cli(['up', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /up to date; nothing to do/);
    const again = await c.cli(['up', '--json']);
    assert.equal(again.code, 0, again.stderr);
    const result = JSON.parse(again.stdout) as { changed: boolean; steps: unknown[] };
    assert.equal(result.changed, false);
    assert.deepEqual(result.steps, []);
    assert.deepEqual(
      ['pg1', 'pg2', 'pg3'].map((n) => c.postmasterPid(n)),
      pids,
    );
    assert.equal(statSync(join(c.dataDir('pg2'), 'postgresql.conf')).mtimeMs, mtime);
  });

  it('adds a node from the spec without touching the others', async () => {
    const pids = ['pg1', 'pg2', 'pg3'].map((n) => c.postmasterPid(n));
    c.nodes.push({ name: 'pg4', port: await freePort() });
    c.writeSpec();
    const dry = await c.cli(['up', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const planned = (JSON.parse(dry.stdout) as { steps: { kind: string; node: string; slot?: string }[] })
      .steps;
    assert.deepEqual(
      planned.map((s) => `${s.kind}:${s.slot ?? s.node}`),
      ['create-slot:pg4', 'clone:pg4', 'start:pg4', 'wait-streaming:pg4'],
      'a new node needs its slot on the primary and its clone, nothing else',
    );
    assert.ok(!existsSync(c.dataDir('pg4')), '--dry-run changes nothing');
    const up = await c.cli(['up']);
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual(
      ['pg1', 'pg2', 'pg3'].map((n) => c.postmasterPid(n)),
      pids,
      'the existing servers were not restarted',
    );
    const [n] = await c.sql<{ n: string }>('pg4', 'SELECT count(*) AS n FROM orders');
    assert.equal(n?.n, '500');
    const st = JSON.parse((await c.cli(['status', '--json'])).stdout) as StatusJson;
    assert.equal(st.healthy, true, st.warnings.join('\n'));
  });

  it('opens psql on the current primary as the superuser, password from the passfile', async () => {
    const r = await c.cli(['psql', '--', '-Atc', 'SELECT current_user, pg_is_in_recovery()']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'postgres|f');
    const onReplica = await c.cli(['psql', 'pg2', '--', '-Atc', 'SELECT pg_is_in_recovery()']);
    assert.equal(onReplica.stdout.trim(), 't');
  });

  it('reports a setting it wrote that ALTER SYSTEM overrides, and refuses to call the cluster up', async () => {
    await c.sql('pg1', "ALTER SYSTEM SET wal_keep_size = '1GB'");
    await c.sql('pg1', 'SELECT pg_reload_conf()');
    const st = await c.cli(['status', '--json']);
    assert.equal(st.code, 3);
    const warnings = (JSON.parse(st.stdout) as StatusJson).warnings;
    assert.ok(
      warnings.some((w) =>
        /^pg1: setting wal_keep_size .* not in effect \(overridden by .*postgresql\.auto\.conf:\d+\)$/.test(
          w,
        ),
      ),
      warnings.join('\n'),
    );
    const up = await c.cli(['up']);
    assert.equal(up.code, 1);
    assert.match(up.stderr, /E_CONFIG_NOT_APPLIED: .*pg1: wal_keep_size .*ALTER SYSTEM RESET/s);
    await c.sql('pg1', 'ALTER SYSTEM RESET wal_keep_size');
    await c.sql('pg1', 'SELECT pg_reload_conf()');
    assert.equal((await c.cli(['status'])).code, 0);
  });

  it('shows a restart a setting needs as steps of its own, replicas first, and performs them (issue 10.6)', async () => {
    const before = ['pg1', 'pg2', 'pg3', 'pg4'].map((n) => c.postmasterPid(n));
    c.extraSpec = 'settings: { shared_buffers: 64MB }\n';
    c.writeSpec();
    const dry = await c.cli(['up', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const steps = (JSON.parse(dry.stdout) as { steps: { kind: string; node: string; reason: string }[] })
      .steps;
    assert.deepEqual(
      steps.filter((s) => s.kind === 'restart').map((s) => [s.node, s.reason]),
      ['pg2', 'pg3', 'pg4', 'pg1'].map((n) => [n, 'shared_buffers changes only at a restart']),
    );
    assert.deepEqual(
      ['pg1', 'pg2', 'pg3', 'pg4'].map((n) => c.postmasterPid(n)),
      before,
      '--dry-run restarts nothing',
    );
    const up = await c.cli(['up', '--json']);
    assert.equal(up.code, 0, up.stderr);
    const done = (JSON.parse(up.stdout) as { steps: { kind: string; node: string }[] }).steps;
    assert.deepEqual(
      done.filter((s) => s.kind === 'restart').map((s) => s.node),
      ['pg2', 'pg3', 'pg4', 'pg1'],
    );
    for (const n of ['pg1', 'pg2', 'pg3', 'pg4']) {
      const [row] = await c.sql<{ v: string }>(n, "SELECT current_setting('shared_buffers') AS v");
      assert.equal(row?.v, '64MB', n);
    }
    const after = ['pg1', 'pg2', 'pg3', 'pg4'].map((n) => c.postmasterPid(n));
    assert.ok(
      after.every((pid, i) => pid !== null && pid !== before[i]),
      'every server was restarted',
    );
    await waitUntil(async () => (await c.status()).healthy, 30_000, 'the replicas to stream again');
    const again = await c.cli(['up', '--dry-run', '--json']);
    assert.deepEqual((JSON.parse(again.stdout) as { steps: unknown[] }).steps, [], 'nothing left to do');
  });

  it('stops and starts one node with stop NODE / start NODE, leaving the others running (issue 11)', async () => {
    const others = ['pg1', 'pg2', 'pg4'].map((n) => c.postmasterPid(n));
    const stop = await c.cli(['stop', 'pg3']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(stop.stdout, 'stopped pg3; data kept, `pgrepl start pg3` starts it again\n');
    assert.equal(c.postmasterPid('pg3'), null);
    const down = await c.cli(['status', '--json']);
    assert.equal(down.code, 3);
    assert.equal((JSON.parse(down.stdout) as StatusJson).nodes.find((n) => n.name === 'pg3')?.role, 'down');
    const again = await c.cli(['stop', 'pg3']);
    assert.equal(again.stdout, 'pg3 was not running\n');
    const start = await c.cli(['start', 'pg3']);
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stdout, /^pg3 started in [\d.]+ s\n$/);
    assert.deepEqual(
      ['pg1', 'pg2', 'pg4'].map((n) => c.postmasterPid(n)),
      others,
      'no other node was touched',
    );
    assert.equal((await c.status()).healthy, true);
    assert.equal((await c.cli(['start', 'pg3'])).stdout, 'pg3 already runs\n');
    const primary = await c.cli(['stop', 'pg1']);
    assert.match(primary.stdout, /^stopped pg1, the primary: writes are impossible until `pgrepl start pg1`/);
    assert.equal((await c.cli(['start', 'pg1'])).code, 0);
    await waitUntil(async () => (await c.status()).healthy, 30_000, 'the replicas to stream again');
  });

  it('reloads, shows a pending restart per node, and restarts one node or all, replicas first (issue 11)', async () => {
    // As an operator would edit it by hand: one value changed in place.
    const conf = join(c.dataDir('pg2'), 'postgresql.conf');
    writeFileSync(
      conf,
      readFileSync(conf, 'utf8').replace("shared_buffers = '64MB'", "shared_buffers = '48MB'"),
    );
    const reload = await c.cli(['reload', 'pg2']);
    assert.equal(reload.code, 0, reload.stderr);
    assert.equal(
      reload.stdout,
      'reloaded pg2\npg2: shared_buffers waits for a restart: `pgrepl restart pg2`\n',
    );
    const pending = await c.status();
    assert.deepEqual(
      pending.nodes.map((n) => [n.name, n.pendingRestart]),
      [
        ['pg1', []],
        ['pg2', ['shared_buffers']],
        ['pg3', []],
        ['pg4', []],
      ],
    );
    assert.ok(pending.warnings.includes('pg2: pending restart for shared_buffers: `pgrepl restart pg2`'));
    const human = await c.cli(['status']);
    assert.match(human.stdout, /pg2 .*streaming, pending restart/);
    const others = ['pg1', 'pg3', 'pg4'].map((n) => c.postmasterPid(n));
    const one = await c.cli(['restart', 'pg2']);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout, 'restarted pg2\n');
    assert.deepEqual(
      ['pg1', 'pg3', 'pg4'].map((n) => c.postmasterPid(n)),
      others,
    );
    const [sb] = await c.sql<{ v: string }>('pg2', "SELECT current_setting('shared_buffers') AS v");
    assert.equal(sb?.v, '48MB');
    assert.deepEqual((await c.status()).nodes.find((n) => n.name === 'pg2')?.pendingRestart, []);
    // `up` puts the spec's value back, and plans the restart that needs.
    const back = await c.cli(['up', '--json']);
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual(
      (JSON.parse(back.stdout) as { steps: { kind: string; node: string }[] }).steps.map(
        (st) => `${st.kind}:${st.node}`,
      ),
      ['write-config:pg2', 'restart:pg2'],
    );
    const all = await c.cli(['restart']);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(all.stdout, 'restarted pg2, pg3, pg4, pg1\n', 'replicas first, the primary last');
    await waitUntil(async () => (await c.status()).healthy, 30_000, 'the replicas to stream again');
    assert.equal((await c.status()).primary, 'pg1');
    const handover = await c.cli(['restart', '--switchover']);
    assert.equal(handover.code, 0, handover.stderr);
    assert.match(
      handover.stdout,
      /^restarted pg2, pg3, pg4\nthe primary role moved to pg[234]; the old primary restarted as its replica\n$/,
    );
    await waitUntil(
      async () => (await c.status()).healthy,
      30_000,
      'every node to stream from the new primary',
    );
    assert.notEqual((await c.status()).primary, 'pg1');
    const unknown = await c.cli(['restart', 'nope']);
    assert.equal(unknown.code, 2);
  });

  it('stops with down, reports the nodes down, and resumes with start', async () => {
    const down = await c.cli(['down']);
    assert.equal(down.code, 0, down.stderr);
    const st = await c.cli(['status', '--json']);
    assert.equal(st.code, 3, 'status exits 3 when the cluster is not healthy');
    const status = JSON.parse(st.stdout) as StatusJson;
    assert.deepEqual(
      status.nodes.map((n) => n.role),
      ['down', 'down', 'down', 'down'],
    );
    const start = await c.cli(['start']);
    assert.equal(start.code, 0, start.stderr);
    const again = JSON.parse((await c.cli(['status', '--json'])).stdout) as StatusJson;
    assert.equal(again.healthy, true, again.warnings.join('\n'));
  });

  it('removes a replica: stopped, its slot dropped, out of the spec with the file’s comments kept (issue 11)', async () => {
    appendFileSync(c.specFile, '# my own note, kept by pgrepl\n');
    const primary = (await c.status()).primary as string;
    const victim = ['pg2', 'pg3', 'pg4'].find((n) => n !== primary) as string;
    const refused = await c.cli(['remove', victim]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`E_CONFIRMATION_REQUIRED: remove stops ${victim}`));
    assert.notEqual(c.postmasterPid(victim), null, 'nothing changed without --yes');
    const ofPrimary = await c.cli(['remove', primary, '--yes']);
    assert.equal(ofPrimary.code, 1);
    assert.match(ofPrimary.stderr, /E_IS_PRIMARY: .* is the primary; switch over first/);
    const r = await c.cli(['remove', victim, '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `^removed ${victim} from the cluster and from .*; its slot is dropped\nits data is kept in `,
      ),
    );
    assert.equal(c.postmasterPid(victim), null);
    assert.ok(existsSync(join(c.dataDir(victim), 'PG_VERSION')), 'its data stays without --delete-data');
    const slots = await c.sql<{ slot_name: string }>(
      primary,
      'SELECT slot_name FROM pg_replication_slots ORDER BY 1',
    );
    assert.ok(!slots.some((s) => s.slot_name === victim), JSON.stringify(slots));
    const spec = readFileSync(c.specFile, 'utf8');
    assert.doesNotMatch(spec, new RegExp(`name: ${victim}\\b`));
    assert.match(spec, /# my own note, kept by pgrepl/);
    const [names] = await c.sql<{ v: string }>(
      primary,
      "SELECT current_setting('synchronous_standby_names') AS v",
    );
    assert.equal(names?.v, '', 'async: nothing to name');
    const st = await c.status();
    assert.equal(st.healthy, true, st.warnings.join('\n'));
    assert.equal(st.nodes.length, 3);
    c.nodes = c.nodes.filter((n) => n.name !== victim);
  });

  it('destroys only with --yes, and then removes what it created', async () => {
    const refused = await c.cli(['destroy']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /E_CONFIRMATION_REQUIRED/);
    assert.ok(existsSync(c.dataDir('pg1')));
    const done = await c.cli(['destroy', '--yes']);
    assert.equal(done.code, 0, done.stderr);
    for (const n of ['pg1', 'pg2', 'pg3', 'pg4']) {
      assert.equal(c.postmasterPid(n), null);
      assert.ok(!existsSync(c.dataDir(n)), `${n}: pgrepl made it, even the one removed from the spec`);
    }
    assert.ok(!existsSync(join(c.base, 'state')));
    assert.ok(existsSync(c.specFile), 'the spec is the user’s, not pgrepl’s');
  });
});
