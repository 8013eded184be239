import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { withClusterLock } from '../../src/cluster/store/cluster-lock.js';

const RACER = join(dirname(fileURLToPath(import.meta.url)), '../helpers/lock-racer.js');

/** A PID that is certainly dead: a child that has exited and been reaped. */
function deadPid(): number {
  const r = spawnSync('true');
  return r.pid as number;
}

function staleLock(stateDir: string): void {
  writeFileSync(
    `${stateDir}.lock`,
    JSON.stringify({ pid: deadPid(), command: 'promote', since: '2026-01-01T00:00:00Z', token: 'dead' }),
  );
}

interface Racer {
  out: string;
  exited: Promise<void>;
}

function race(stateDir: string, startAt: number, releaseFile: string): Racer {
  const child = spawn(process.execPath, [RACER, stateDir, String(startAt), releaseFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const r: Racer = { out: '', exited: Promise.resolve() };
  child.stdout.setEncoding('utf8').on('data', (d: string) => (r.out += d));
  r.exited = new Promise((resolve) => child.on('close', () => resolve()));
  return r;
}

describe('cluster lock (issue 9.3)', () => {
  it('lets exactly one of many commands take over a lock whose owner died, every time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgrepl-lock-'));
    try {
      for (let round = 0; round < 20; round++) {
        const stateDir = join(dir, `state${round}`);
        const releaseFile = join(dir, `release${round}`);
        staleLock(stateDir);
        const startAt = Date.now() + 400;
        const racers = Array.from({ length: 8 }, () => race(stateDir, startAt, releaseFile));
        try {
          // Every contender says how it fared; a winner holds the lock until told to let go.
          const deadline = Date.now() + 10_000;
          while (racers.some((r) => r.out === '') && Date.now() < deadline)
            await new Promise((r) => setTimeout(r, 10));
        } finally {
          writeFileSync(releaseFile, '');
          await Promise.all(racers.map((r) => r.exited));
        }
        const outcomes = racers.map((r) => r.out.trim()).sort();
        assert.deepEqual(
          outcomes,
          ['locked', 'locked', 'locked', 'locked', 'locked', 'locked', 'locked', 'won'],
          `round ${round}`,
        );
        assert.deepEqual(
          readdirSync(dir).filter((f) => f.startsWith(`state${round}.lock`)),
          [],
          'the winner removed its lock, and no temporary or guard file is left',
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not remove, on release, a lock that is no longer its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgrepl-lock-'));
    const stateDir = join(dir, 'state');
    try {
      await withClusterLock(stateDir, 'up', async () => {
        // Someone (wrongly) replaced the lock meanwhile: it is theirs now, and must stay.
        rmSync(`${stateDir}.lock`);
        writeFileSync(
          `${stateDir}.lock`,
          JSON.stringify({ pid: process.pid, command: 'other', since: 'x', token: 't' }),
        );
      });
      assert.equal(JSON.parse(readFileSync(`${stateDir}.lock`, 'utf8')).command, 'other');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses while the owner lives, naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgrepl-lock-'));
    const stateDir = join(dir, 'state');
    try {
      await withClusterLock(stateDir, 'switchover', async () => {
        await assert.rejects(
          withClusterLock(stateDir, 'promote', async () => undefined),
          (e: Error & { code?: string }) => e.code === 'E_LOCKED' && /`switchover`/.test(e.message),
        );
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
