import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { PgreplError } from '../errors.js';
import { processExists } from '../postgres/instance-control.js';

interface LockOwner {
  pid: number;
  command: string;
  since: string;
}

/**
 * Runs `fn` holding the cluster lock, a file beside the state dir (`<stateDir>.lock`), so that two
 * pgrepl commands cannot change one cluster at once (two promotes: only one wins). The file is
 * created atomically with link(2); a lock whose process is gone is taken over, also atomically.
 */
export async function withClusterLock<T>(
  stateDir: string,
  command: string,
  fn: () => Promise<T>,
): Promise<T> {
  const lock = `${stateDir}.lock`;
  acquire(lock, command);
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

function acquire(lock: string, command: string): void {
  const mine: LockOwner = { pid: process.pid, command, since: new Date().toISOString() };
  const tmp = `${lock}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(mine), { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        linkSync(tmp, lock);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = readOwner(lock);
      if (owner && processExists(owner.pid)) {
        throw new PgreplError(
          'E_LOCKED',
          `another pgrepl (pid ${owner.pid}, \`${owner.command}\`, since ${owner.since}) is changing this cluster; ` +
            'wait for it to finish, then try again',
        );
      }
      // Stale: its process is gone. Renaming it away is atomic, so only one taker succeeds.
      try {
        renameSync(lock, `${lock}.stale-${process.pid}`);
        rmSync(`${lock}.stale-${process.pid}`, { force: true });
      } catch {
        // someone else took it over first; the next link attempt tells
      }
    }
    throw new PgreplError(
      'E_LOCKED',
      `could not take the cluster lock ${lock}; another pgrepl is starting up, try again`,
    );
  } finally {
    rmSync(tmp, { force: true });
  }
}

function readOwner(lock: string): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(lock, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}
