/**
 * Issue 9.8: a topology operation reaches its end, or a safe point, whatever happens to its output
 * or its terminal; only SIGINT/SIGTERM stop it, and then at a safe point, saying what to run next.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, clusterForSuite, upCluster } from '../helpers/test-cluster.js';
import type { TestCluster } from '../helpers/test-cluster.js';

/** The CLI as a terminal would run it, with its pipes in the test's hands. */
function spawnCli(c: TestCluster, args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [CLI, '-c', c.specFile, ...args], {
    cwd: c.base,
    env: { ...process.env, XDG_CACHE_HOME: join(c.base, 'cache') },
  });
}

/** Resolves with the exit code (128+n for a signal) once the child has exited. */
const exited = (child: ChildProcessWithoutNullStreams) =>
  new Promise<number>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : 128))),
  );

/** Calls `fn` once the child's stderr shows `pattern`; collects all it printed. */
function onStderr(child: ChildProcessWithoutNullStreams, pattern: RegExp, fn: () => void): { text: string } {
  const seen = { text: '' };
  let fired = false;
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    seen.text += d;
    if (!fired && pattern.test(seen.text)) {
      fired = true;
      fn();
    }
  });
  return seen;
}

const primaryOf = async (c: TestCluster) => (await c.status()).primary;

describe('an operator’s terminal goes away, or asks to stop (issue 9.8)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made), { setUp: upCluster });

  it('a switchover whose output is closed (| head) still finishes', async () => {
    const child = spawnCli(c, ['switchover', '--to', 'pg2']);
    onStderr(child, /switching/, () => {
      child.stdout.destroy();
      child.stderr.destroy();
    });
    assert.equal(await exited(child), 0);
    assert.equal(await primaryOf(c), 'pg2');
    assert.equal((await c.status()).healthy, true);
  });

  it('a switchover that gets SIGHUP while the old primary stops still finishes', async () => {
    const child = spawnCli(c, ['switchover', '--to', 'pg3']);
    onStderr(child, /stopping pg2/, () => child.kill('SIGHUP'));
    assert.equal(await exited(child), 0);
    assert.equal(await primaryOf(c), 'pg3');
    assert.equal((await c.status()).healthy, true);
  });

  it('SIGINT while the old primary stops: the promotion still happens, then it stops and says to resume', async () => {
    const child = spawnCli(c, ['switchover', '--to', 'pg1']);
    const err = onStderr(child, /stopping pg3/, () => child.kill('SIGINT'));
    assert.equal(await exited(child), 130);
    assert.match(err.text, /stopping at the next safe point/);
    assert.match(
      err.text,
      /E_INTERRUPTED: stopped by SIGINT at a safe point, before step "slots on pg1"; run `pgrepl resume`/,
    );
    const mid = await c.status();
    assert.equal(mid.primary, 'pg1', 'never left without a primary: the target was promoted first');
    const r = await c.cli(['resume']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await c.status()).healthy, true);
  });

  it('status --watch | head ends quietly', async () => {
    const child = spawnCli(c, ['status', '--watch', '--interval', '0.2']);
    let out = 0;
    child.stdout.on('data', () => {
      if (++out === 2) child.stdout.destroy();
    });
    const err = onStderr(child, /$^/, () => undefined);
    assert.equal(await exited(child), 0);
    assert.doesNotMatch(err.text, /EPIPE|Error/);
  });
});
