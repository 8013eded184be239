import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { fenceLink } from '../../src/agent/fence-link.js';
import { monotonicNow } from '../../src/monotonic-now.js';
import { encodeFenceOrder } from '../../src/agent/fence-order.js';
import type { FenceOrder } from '../../src/agent/fence-order.js';
import { FENCE_WATCHDOG_SCRIPT } from '../../src/package-files.js';
import { watchProcess } from '../../src/postgres/process-watch.js';

// The watchdog against stand-in postmasters (sleep processes named in a postmaster.pid): what it
// kills, when, and what it leaves alone.
describe('the fence watchdog', () => {
  const started: ChildProcess[] = [];
  const dirs: string[] = [];
  afterEach(() => {
    for (const p of started.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  const setUp = () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pgrepl-fence-'));
    dirs.push(dataDir);
    const file = join(dataDir, 'fence.json');
    const order = (o: FenceOrder) => writeFileSync(file, encodeFenceOrder(o));
    /** A stand-in postmaster in a process group of its own, as the real one is. */
    const postmaster = () => {
      const p = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
      started.push(p);
      writeFileSync(join(dataDir, 'postmaster.pid'), `${p.pid}\n${dataDir}\n`);
      return p;
    };
    /** `wallSkewMs`: its Date.now runs that far from the real one (a wall clock stepped). */
    const watchdog = (wallSkewMs = 0) => {
      const skew =
        wallSkewMs === 0
          ? []
          : ['--import', `data:text/javascript,const n=Date.now;Date.now=()=>n()+(${wallSkewMs})`];
      const w = spawn(process.execPath, [...skew, FENCE_WATCHDOG_SCRIPT, file, dataDir], { stdio: 'ignore' });
      started.push(w);
      return w;
    };
    return { dataDir, file, order, postmaster, watchdog };
  };
  const dies = async (p: ChildProcess, withinMs: number) => {
    const w = watchProcess(p.pid!);
    const deadline = Date.now() + withinMs;
    while (w.alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const dead = !w.alive();
    w.close();
    return dead;
  };

  it('kills the postmaster the order names once its deadline passes, not before', async () => {
    const t = setUp();
    const pm = t.postmaster();
    t.order({ until: monotonicNow() + 1500, pid: pm.pid! });
    t.watchdog();
    assert.equal(await dies(pm, 300), false, 'alive before the deadline');
    assert.equal(await dies(pm, 3000), true, 'killed after it');
  });

  it('kills on time with its wall clock stepped back an hour: deadlines are on the monotonic clock (issue 31, defect 6)', async () => {
    const t = setUp();
    const pm = t.postmaster();
    t.order({ until: monotonicNow() + 500, pid: pm.pid! });
    t.watchdog(-3_600_000);
    assert.equal(await dies(pm, 200), false, 'alive before the deadline');
    assert.equal(await dies(pm, 2000), true, 'killed after it, not an hour later');
  });

  it('reads an order as it is written: a deadline renewed is not carried out, one brought forward is', async () => {
    const t = setUp();
    const pm = t.postmaster();
    t.order({ until: monotonicNow() + 400, pid: pm.pid! });
    t.watchdog();
    await new Promise((r) => setTimeout(r, 200));
    // The agent renewed its lease before the deadline, as every loop does.
    t.order({ until: monotonicNow() + 60_000, pid: pm.pid! });
    assert.equal(await dies(pm, 1000), false, 'alive past the deadline it replaced');
    // An order may also come due at once (armed before a promotion with no lease left).
    t.order({ until: monotonicNow(), pid: pm.pid! });
    assert.equal(await dies(pm, 400), true, 'killed without waiting for the old deadline');
  });

  it('leaves alone a PID that does not own the data directory', async () => {
    const t = setUp();
    const owner = t.postmaster();
    const other = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    started.push(other);
    t.order({ until: monotonicNow(), pid: other.pid! });
    t.watchdog();
    assert.equal(await dies(other, 500), false);
    assert.equal(await dies(owner, 100), false);
  });

  it('without a PID, kills whichever postmaster owns the directory at the deadline, and only once', async () => {
    const t = setUp();
    // Armed before a restart in place: the server does not run yet when the order is written.
    t.order({ until: monotonicNow() + 400, pid: null });
    t.watchdog();
    const restarted = t.postmaster();
    assert.equal(await dies(restarted, 3000), true, 'the restarted primary is fenced');
    // A postmaster started after the order was carried out (a rejoin) is not killed for it.
    const later = t.postmaster();
    assert.equal(await dies(later, 500), false);
  });

  it('ends when the file is removed while disarmed', async () => {
    const t = setUp();
    t.order({ until: null, pid: null });
    const w = t.watchdog();
    await new Promise((r) => setTimeout(r, 100));
    rmSync(t.file);
    const [code] = (await once(w, 'exit')) as [number];
    assert.equal(code, 0);
  });
});

describe("the agent's link to its fence watchdog", () => {
  it('starts one watchdog, asks after it without starting another, and starts it again once it died', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgrepl-fence-link-'));
    const link = fenceLink({
      file: join(dir, 'fence.json'),
      pidFile: join(dir, 'fence-watchdog.pid'),
      logFile: join(dir, 'fence-watchdog.log'),
      dataDir: dir,
    });
    const pids: number[] = [];
    try {
      pids.push(link.ensureRunning());
      assert.equal(link.ensureRunning(), pids[0], 'a running watchdog is the one asked after');
      process.kill(pids[0]!, 'SIGKILL');
      const first = watchProcess(pids[0]!);
      while (first.alive()) await new Promise((r) => setTimeout(r, 10));
      first.close();
      pids.push(link.ensureRunning());
      assert.notEqual(pids[1], pids[0]);
      const second = watchProcess(pids[1]!);
      assert.equal(second.alive(), true, 'the new watchdog runs');
      // Disarmed, it ends when its order file goes.
      link.close();
      const deadline = Date.now() + 5000;
      while (second.alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(second.alive(), false, 'close() ends the watchdog');
      second.close();
    } finally {
      for (const pid of pids)
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
