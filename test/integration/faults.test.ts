import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  allChildren,
  assertNoLeakedServers,
  pgBin,
  runCli,
  TestCluster,
  waitUntil,
  zombie,
} from '../helpers/test-cluster.js';
import type { NodeDef } from '../helpers/test-cluster.js';

const isRoot = process.getuid?.() === 0;

/** The postgres OS user's ids (PostgreSQL refuses to run as root). */
const postgresIds = () => ({
  uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
  gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
});

describe('bad input and faults: a clear error, a non-zero exit, nothing changed', () => {
  const clusters: TestCluster[] = [];
  const fresh = async (names: string[]) => {
    const c = await TestCluster.create(names);
    clusters.push(c);
    return c;
  };
  after(async () => {
    for (const c of clusters) await c.cleanup();
    assertNoLeakedServers();
  });

  it('points at file:line:col of a bad spec and creates nothing', async () => {
    const c = await fresh(['pg1']);
    writeFileSync(
      c.specFile,
      'cluster: test\nstateDir: state\nnodes:\n  - name: pg1\n    port: fifty\n    colour: blue\n',
    );
    const r = await c.cli(['up']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_SPEC_INVALID/);
    assert.match(r.stderr, /pgrepl\.yaml:5:11: nodes\.0\.port: .*number/);
    assert.match(r.stderr, /pgrepl\.yaml:4:5: nodes\.0: .*colour/);
    assert.ok(!existsSync(join(c.base, 'state')));
  });

  it('refuses settings the PostgreSQL binary rejects, at file:line, before anything is written (issue 9.10)', async () => {
    const c = await fresh(['pg1']);
    c.extraSpec =
      'settings:\n  bogus_setting: 3\n  work_mem: abc\n  wal_level: replicax\n  max_connections: 50\n';
    c.writeSpec();
    const r = await c.cli(['up']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_SPEC_INVALID/);
    assert.match(
      r.stderr,
      /pgrepl\.yaml:4:18: settings\.bogus_setting: PostgreSQL \S+ rejects it: unrecognized configuration parameter "bogus_setting"/,
    );
    assert.match(
      r.stderr,
      /pgrepl\.yaml:5:13: settings\.work_mem: .*invalid value for parameter "work_mem": "abc"/,
    );
    assert.match(r.stderr, /settings\.wal_level: .*Available values: minimal, replica, logical/);
    assert.doesNotMatch(r.stderr, /max_connections/);
    assert.ok(!existsSync(join(c.base, 'state')), 'nothing was created');
  });

  it('reports a server that exits while starting, with the end of its log', async () => {
    // Valid to the binary (pgrepl checks settings before writing them), fatal when the server starts.
    const c = await TestCluster.create(
      ['pg1'],
      'settings:\n  shared_preload_libraries: pgrepl_no_such_library\n',
    );
    clusters.push(c);
    const r = await c.cli(['up']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /E_COMMAND_FAILED: the server in .*pg1 exited \(code 1\) before it was ready; see the server log: .*pg1\.log\n.*could not access file "pgrepl_no_such_library"/s,
    );
    assert.equal(c.postmasterPid('pg1'), null);
  });

  it('names the missing spec file', async () => {
    const r = await runCli(['-c', '/nonexistent/pgrepl.yaml', 'status']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /E_SPEC_NOT_FOUND: spec file \/nonexistent\/pgrepl\.yaml does not exist; write one with `pgrepl init/,
    );
  });

  it('says how to install the server binaries when they are missing', async () => {
    const c = await fresh(['pg1']);
    const empty = join(c.base, 'no-bin');
    mkdirSync(empty);
    const r = await c.cli(['up'], { env: { PGREPL_PG_BIN: empty } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_NO_PG_BINARIES: .*lacks initdb.*apt-get install postgresql/s);
    assert.ok(!existsSync(join(c.base, 'state')));
  });

  describe('a port taken by another process', () => {
    let blocker: Server;
    let c: TestCluster;
    before(async () => {
      c = await fresh(['pg1', 'pg2']);
      blocker = createServer();
      await new Promise<void>((r) => blocker.listen(c.port('pg2'), '127.0.0.1', () => r()));
    });
    after(() => new Promise<void>((r) => blocker.close(() => r())));

    it('is refused before anything is created', async () => {
      const r = await c.cli(['up']);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        new RegExp(`E_PORT_IN_USE: port ${c.port('pg2')} on 127.0.0.1 \\(node pg2\\) is taken`),
      );
      assert.ok(!existsSync(join(c.base, 'state')), 'no state dir, no data dir');
    });
  });

  it('refuses a data directory that holds files pgrepl did not create, and leaves them', async () => {
    const c = await fresh(['pg1']);
    mkdirSync(c.dataDir('pg1'), { recursive: true });
    writeFileSync(join(c.dataDir('pg1'), 'notes.txt'), 'mine');
    const r = await c.cli(['up']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_DATA_DIR_FOREIGN: .*pg1.* holds files that are not PostgreSQL data/);
    assert.deepEqual(readdirSync(c.dataDir('pg1')), ['notes.txt']);
  });

  it('refuses a PostgreSQL directory it did not create, and leaves its configuration as it was (issue 9.6)', async () => {
    const c = await fresh(['pg1']);
    const dir = join(c.base, 'mine');
    c.nodes[0] = { ...(c.nodes[0] as NodeDef), dataDir: 'mine' };
    c.writeSpec();
    mkdirSync(dir, { mode: 0o700 });
    if (isRoot) chownSync(dir, postgresIds().uid, postgresIds().gid);
    const init = spawnSync(join(pgBin(), 'initdb'), ['-D', dir, '-A', 'peer', '-N'], {
      cwd: '/',
      encoding: 'utf8',
      ...(isRoot ? postgresIds() : {}),
    });
    assert.equal(init.status, 0, init.stderr);
    appendFileSync(join(dir, 'postgresql.conf'), 'work_mem = 77MB # my own line\n');
    const conf = readFileSync(join(dir, 'postgresql.conf'), 'utf8');
    const hba = readFileSync(join(dir, 'pg_hba.conf'), 'utf8');
    const r = await c.cli(['up']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /E_DATA_DIR_FOREIGN: .*mine \(node pg1\) holds a PostgreSQL cluster that pgrepl did not create/,
    );
    assert.equal(
      readFileSync(join(dir, 'postgresql.conf'), 'utf8'),
      conf,
      'its postgresql.conf is untouched',
    );
    assert.equal(readFileSync(join(dir, 'pg_hba.conf'), 'utf8'), hba);
    assert.equal(existsSync(join(dir, 'postmaster.pid')), false, 'it was not started');
  });

  it('tells steps and decisions as JSON lines with --log-format json, and keeps stdout for the result', async () => {
    const c = await fresh(['pg1', 'pg2']);
    const r = await c.cli(['--log-format', 'json', 'up', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const events = r.stderr
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            event: string;
            msg: string;
            time: string;
            step?: { kind: string; node: string };
          },
      );
    assert.ok(
      events.length > 0 &&
        events.every((e) => typeof e.msg === 'string' && !Number.isNaN(Date.parse(e.time))),
    );
    const started = events
      .filter((e) => e.event === 'step-started')
      .map((e) => `${e.step?.kind}:${e.step?.node}`);
    assert.deepEqual(started.slice(0, 2), ['init-primary:pg1', 'ensure-replication-role:pg1']);
    assert.ok(
      events.some((e) => e.event === 'clone-progress'),
      'the clone reports its progress',
    );
    assert.ok(events.some((e) => e.event === 'step-finished' && e.step?.kind === 'wait-streaming'));
    assert.equal((JSON.parse(r.stdout) as { primary: string }).primary, 'pg1');
    const sw = await c.cli(['--log-format', 'json', 'switchover']);
    assert.equal(sw.code, 0, sw.stderr);
    const told = sw.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; op?: string; msg: string });
    assert.ok(told.some((e) => e.event === 'decision' && e.op === 'switchover' && /pg1 -> pg2/.test(e.msg)));
    assert.ok(told.some((e) => e.event === 'journal-step' && e.msg.startsWith('done: promote pg2')));
    const bad = await c.cli(['--log-format', 'xml', 'status']);
    assert.equal(bad.code, 2, bad.stderr);
  });

  it('--help names every environment variable pgrepl reads (issue 11)', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0);
    for (const v of ['PGREPL_PG_BIN', 'XDG_CACHE_HOME', 'PGREPL_CRASH_AT'])
      assert.match(r.stdout, new RegExp(`^  ${v} `, 'm'), v);
    assert.match(r.stdout, /any variable a spec names for a password/);
  });

  it('exits 2 on a usage mistake, before it reads any spec (E_USAGE)', async () => {
    for (const args of [
      ['promote', 'pg2', '--auto'],
      ['promote'],
      ['set-mode', 'bogus'],
      ['set-mode', 'quorum'],
      ['set-mode', 'sync', '--count', 'abc'],
      ['set-mode', 'async', '--count', '2'],
      ['promote', 'pg2', '--i-know-the-old-primary-is-down'],
      ['status', '--watch', '--interval', 'abc'],
      ['status', '--watch', '--interval', '0'],
      ['status', '--interval', '-1'],
      ['no-such-command'],
    ]) {
      const r = await runCli(['-c', '/nonexistent/pgrepl.yaml', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /E_SPEC_NOT_FOUND/, args.join(' '));
    }
  });

  it('writes a spec with init that up accepts, and does not overwrite it without --force', async () => {
    const c = await fresh(['pg1']);
    const file = join(c.base, 'new.yaml');
    const first = await runCli(['init', '--nodes', '2', '--base-port', '6100', '-o', file], { cwd: c.base });
    assert.equal(first.code, 0, first.stderr);
    const plan = await runCli(['-c', file, 'up', '--dry-run', '--json'], { cwd: c.base });
    assert.equal(plan.code, 0, plan.stderr);
    assert.deepEqual(
      (JSON.parse(plan.stdout) as { steps: { kind: string }[] }).steps.map((s) => s.kind),
      ['init-primary', 'ensure-replication-role', 'create-slot', 'clone', 'start', 'wait-streaming'],
    );
    const again = await runCli(['init', '-o', file], { cwd: c.base });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /E_SPEC_EXISTS: .*--force/);
    const bad = await runCli(['init', '--nodes', 'many', '-o', join(c.base, 'x.yaml')], { cwd: c.base });
    assert.equal(bad.code, 2, 'a bad option is a usage mistake');
    assert.ok(!existsSync(join(c.base, 'x.yaml')));
    const wildcard = await runCli(['init', '--host', '0.0.0.0', '-o', join(c.base, 'w.yaml')], {
      cwd: c.base,
    });
    assert.equal(wildcard.code, 2);
    assert.match(
      wildcard.stderr,
      /E_USAGE: --host is the address every node listens on and is reached at; 0\.0\.0\.0 is no address/,
    );
    assert.ok(!existsSync(join(c.base, 'w.yaml')));
    const nowhere = await runCli(['init', '-o', join(c.base, 'missing', 'dir', 'x.yaml')], { cwd: c.base });
    assert.equal(nowhere.code, 2);
    assert.match(
      nowhere.stderr,
      /E_USAGE: .*missing\/dir does not exist; create it first, or pick another -o\n$/,
    );
    assert.doesNotMatch(nowhere.stderr, /at /, 'no stack trace');
  });

  it('rejects a node name that does not exist', async () => {
    const c = await fresh(['pg1']);
    const r = await c.cli(['url', '--node', 'nope']);
    assert.equal(r.code, 2, 'a name the spec lacks is a usage mistake');
    assert.match(r.stderr, /E_UNKNOWN_NODE: no node named "nope" .*nodes are: pg1/);
    for (const args of [
      ['rejoin', 'nope'],
      ['switchover', '--to', 'nope'],
      ['psql', 'nope'],
    ]) {
      const other = await c.cli(args);
      assert.equal(other.code, 2, `${args.join(' ')}: ${other.stderr}`);
      assert.match(other.stderr, /E_UNKNOWN_NODE/);
    }
  });

  it('prints URIs without the password unless asked', async () => {
    const c = await fresh(['pg1', 'pg2']);
    const r = await c.cli(['url']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout.trim(),
      `postgresql://postgres@127.0.0.1:${c.port('pg1')},127.0.0.1:${c.port('pg2')}/postgres?target_session_attrs=read-write`,
    );
  });

  it(
    'refuses, as root, a data dir the postgres user cannot reach, and creates nothing',
    { skip: !isRoot && 'needs root' },
    async () => {
      const hidden = mkdtempSync(join(tmpdir(), 'pgrepl-test-'));
      chmodSync(hidden, 0o700);
      try {
        writeFileSync(join(hidden, 'pgrepl.yaml'), 'cluster: t\nnodes:\n  - name: pg1\n    port: 54999\n');
        const r = await runCli(['up'], { cwd: hidden });
        assert.equal(r.code, 1);
        assert.match(
          r.stderr,
          new RegExp(`E_DIR_NOT_REACHABLE: .*"postgres" cannot enter ${hidden} \\(mode 700\\).*chmod o\\+x`),
        );
        assert.deepEqual(readdirSync(hidden), ['pgrepl.yaml']);
      } finally {
        rmSync(hidden, { recursive: true, force: true });
      }
    },
  );

  it('starts a node whose killed postmaster is an unreaped zombie, without waiting for the reap', async () => {
    const c = await fresh(['pg1']);
    assert.equal((await c.cli(['up'])).code, 0);
    const bin = (JSON.parse((await c.cli(['status', '--json'])).stdout) as { postgres: { binDir: string } })
      .postgres.binDir;
    assert.equal((await c.cli(['down'])).code, 0);
    // A parent that never reaps: sh starts the postmaster in the background, then becomes `sleep`.
    const script = `"${bin}/postgres" -D "$1" >/dev/null 2>&1 & exec sleep 120`;
    const args = ['-c', script, 'sh', c.dataDir('pg1')];
    const holder = spawn(isRoot ? 'runuser' : 'sh', isRoot ? ['-u', 'postgres', '--', 'sh', ...args] : args, {
      detached: true,
      stdio: 'ignore',
    });
    try {
      await waitUntil(() => c.postmasterPid('pg1') !== null, 10_000, 'the postmaster');
      const pid = c.postmasterPid('pg1') as number;
      for (const p of [pid, ...allChildren(pid)]) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // a child that exited between the listing and the kill
        }
      }
      // The killed postmaster stays a zombie: its parent never waits for it.
      await waitUntil(() => zombie(pid), 10_000, 'the postmaster to die');
      // Its parent never reaps it, yet nothing of it runs: its lock file is stale, and start goes on.
      const r = await c.cli(['start']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        /pg1: its killed postmaster \(PID \d+\) is an unreaped zombie; its stale lock file was removed/,
      );
      assert.ok(zombie(pid), 'the zombie was still there: start did not wait for it');
      assert.equal((await c.status()).healthy, true);
    } finally {
      try {
        process.kill(-(holder.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });

  it('starts a node only once no process of its killed server holds its shared memory', async () => {
    const c = await fresh(['pg1']);
    assert.equal((await c.cli(['up'])).code, 0);
    const pid = c.postmasterPid('pg1') as number;
    // One backend process that cannot notice its postmaster died keeps the shared memory attached.
    const [stuck] = allChildren(pid);
    assert.ok(stuck, 'the postmaster has children');
    process.kill(stuck, 'SIGSTOP');
    try {
      process.kill(pid, 'SIGKILL');
      await waitUntil(() => !existsSync(`/proc/${pid}`), 10_000, 'the postmaster to be reaped');
      let said = '';
      const start = c.cli(['start'], { onStderr: (s) => (said = s) });
      await waitUntil(
        () => /waiting for pg1: 1 process\(es\) of its killed server still use its shared memory/.test(said),
        30_000,
        'start to wait for the shared memory',
      );
      assert.equal(c.postmasterPid('pg1'), null, 'pgrepl waits while the old memory is in use');
      process.kill(stuck, 'SIGKILL');
      const r = await start;
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await c.status()).healthy, true);
    } finally {
      try {
        process.kill(stuck, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });

  describe('a primary that runs but does not answer', () => {
    let c: TestCluster;
    let pid: number;
    before(async () => {
      c = await fresh(['pg1', 'pg2']);
      const up = await c.cli(['up']);
      assert.equal(up.code, 0, up.stderr);
      pid = c.postmasterPid('pg1') as number;
      process.kill(pid, 'SIGSTOP'); // hung, not dead: connections time out
    });
    after(() => {
      process.kill(pid, 'SIGCONT');
    });

    it('is reported unreachable by status (exit 3) and refused by up', async () => {
      const st = await c.cli(['status', '--json']);
      assert.equal(st.code, 3);
      const status = JSON.parse(st.stdout) as { nodes: { name: string; role: string }[]; warnings: string[] };
      assert.equal(status.nodes.find((n) => n.name === 'pg1')?.role, 'unreachable');
      assert.ok(status.warnings.some((w) => w.startsWith('pg1 runs but does not answer')));
      const up = await c.cli(['up']);
      assert.equal(up.code, 1);
      assert.match(up.stderr, /E_PRIMARY_UNREACHABLE: pg1 runs but does not answer .*; nothing was changed/);
    });
  });
});
