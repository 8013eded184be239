import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FENCE_WATCHDOG_SCRIPT } from '../../src/agent/fence-watchdog.js';
import { alive, waitUntil } from '../helpers/test-cluster.js';

/**
 * The fence watchdog as a real process, against real processes standing in for a postmaster (their
 * command line says postgres, as a postmaster's does): what it kills, when, and what it leaves.
 */
describe('the fence watchdog', () => {
  const servers: ChildProcess[] = [];
  const dogs: ChildProcess[] = [];
  const dirs: string[] = [];
  after(() => {
    // Each stand-in leads a process group of its own; each watchdog is a plain child.
    for (const p of servers) if (p.pid && alive(p.pid)) process.kill(-p.pid, 'SIGKILL');
    for (const p of dogs) if (p.pid && alive(p.pid)) process.kill(p.pid, 'SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** A data directory whose postmaster.pid names a process (in a group of its own) called `name`. */
  const setUp = (name: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'pgrepl-fence-'));
    dirs.push(dir);
    const server = spawn('bash', ['-c', `exec -a ${name} sleep 60`], { detached: true, stdio: 'ignore' });
    servers.push(server);
    writeFileSync(join(dir, 'postmaster.pid'), `${server.pid}\n${dir}\n`);
    const fence = join(dir, 'fence.json');
    const order = (until: number | null, pid: number | null) =>
      writeFileSync(fence, JSON.stringify({ until, pid }));
    order(null, null);
    const dog = spawn(process.execPath, [FENCE_WATCHDOG_SCRIPT, fence, dir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    dogs.push(dog);
    let err = '';
    dog.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    return { server, order, stderr: () => err };
  };

  it('kills the postmaster that owns the data directory once the deadline passes, the order naming no PID', async () => {
    const { server, order, stderr } = setUp('postgres');
    order(Date.now() + 300, null);
    await waitUntil(() => !alive(server.pid as number), 5000, 'the watchdog to kill it');
    await waitUntil(
      () => stderr().includes(`killed postmaster ${server.pid}`),
      5000,
      'the watchdog to say so',
    );
  });

  it('leaves it while disarmed, and while each new order moves the deadline on', async () => {
    const { server, order } = setUp('postgres');
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(alive(server.pid as number), 'disarmed: left running');
    for (let i = 0; i < 6; i++) {
      order(Date.now() + 300, server.pid as number);
      await new Promise((r) => setTimeout(r, 150));
    }
    assert.ok(alive(server.pid as number), 'renewed in time: left running');
    await waitUntil(() => !alive(server.pid as number), 5000, 'the last deadline to pass');
  });

  it('does not kill a process that is not postgres, whatever the PID file says', async () => {
    const { server, order, stderr } = setUp('sleeper');
    order(Date.now() + 100, null);
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(alive(server.pid as number));
    assert.equal(stderr(), '');
    assert.equal(
      readFileSync(join(dirs.at(-1) as string, 'postmaster.pid'), 'utf8').split('\n')[0],
      String(server.pid),
    );
  });
});
