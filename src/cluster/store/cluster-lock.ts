import {
  linkSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { PgreplError } from '../../errors.js';
import { processExists } from '../../postgres/instance-control.js';
import { monotonicNow } from '../../monotonic-now.js';

interface LockOwner {
  pid: number;
  command: string;
  since: string;
  /** Unique per acquisition: an inode number can be reused once a lock file is removed, this cannot. */
  token: string;
}

/** The lock file as one taker saw it: which file (inode and text) and who wrote it. */
interface SeenLock {
  readonly ino: number;
  readonly text: string;
  readonly owner: LockOwner | undefined;
}

/**
 * A takeover guard older than this was left by a taker that died in the few system calls it holds
 * the guard for; no live taker holds it for anything near that long.
 */
const STALE_GUARD_MS = 10_000;

/** How long a command waits for another one's takeover of a stale lock to settle. */
const ACQUIRE_TIMEOUT_MS = 5_000;

/**
 * Runs `fn` holding the cluster lock, a file beside the state dir (`<stateDir>.lock`), so that two
 * pgrepl commands cannot change one cluster at once (two promotes: only one wins). The file is
 * created atomically with link(2). A lock whose process is gone is taken over under a guard file,
 * and only if it is still the very file (inode) that was judged stale: two commands that find the
 * same dead owner cannot both take it. Release removes the lock only while it is still ours.
 */
export async function withClusterLock<T>(
  stateDir: string,
  command: string,
  fn: () => Promise<T>,
): Promise<T> {
  const lock = `${stateDir}.lock`;
  const mine = await acquire(lock, command);
  try {
    return await fn();
  } finally {
    // Only while it is still ours: never delete a lock another command holds.
    if (sameFile(look(lock), mine)) rmSync(lock, { force: true });
  }
}

async function acquire(lock: string, command: string): Promise<SeenLock> {
  const token = randomBytes(8).toString('hex');
  const owner: LockOwner = { pid: process.pid, command, since: new Date().toISOString(), token };
  const tmp = `${lock}.${process.pid}-${token}`;
  writeFileSync(tmp, JSON.stringify(owner), { mode: 0o600 });
  const deadline = monotonicNow() + ACQUIRE_TIMEOUT_MS;
  try {
    for (;;) {
      if (tryLink(tmp, lock)) return look(lock) as SeenLock;
      const seen = look(lock);
      if (seen === undefined) continue; // released meanwhile: try again
      // Linked whole from a complete file, a lock is never half-written: unreadable is foreign.
      if (seen.owner === undefined || processExists(seen.owner.pid)) throw locked(lock, seen.owner);
      // Stale: its process is gone. Once removed, link ours (another command may still be quicker).
      if (takeOver(lock, seen)) continue;
      if (monotonicNow() > deadline) throw locked(lock, look(lock)?.owner);
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Removes the stale lock `seen`, under the guard `<lock>.takeover`, only if the lock path still
 * holds that same file. Without the guard, a second taker that judged the same dead owner could
 * remove the first taker's fresh lock. Returns false when the guard is busy (try again soon).
 */
function takeOver(lock: string, seen: SeenLock): boolean {
  const guard = `${lock}.takeover`;
  let fd: number;
  try {
    fd = openSync(guard, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    try {
      if (Date.now() - statSync(guard).mtimeMs > STALE_GUARD_MS) rmSync(guard, { force: true });
    } catch {
      // gone meanwhile
    }
    return false;
  }
  try {
    if (sameFile(look(lock), seen)) unlinkSync(lock);
    return true;
  } finally {
    closeSync(fd);
    rmSync(guard, { force: true });
  }
}

const sameFile = (a: SeenLock | undefined, b: SeenLock): boolean =>
  a !== undefined && a.ino === b.ino && a.text === b.text;

function tryLink(tmp: string, lock: string): boolean {
  try {
    linkSync(tmp, lock);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
}

/** The lock file's inode and owner; undefined when there is no lock file. */
function look(lock: string): SeenLock | undefined {
  let ino: number;
  try {
    ino = statSync(lock).ino;
  } catch {
    return undefined;
  }
  let text: string;
  try {
    text = readFileSync(lock, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return { ino, text, owner: JSON.parse(text) as LockOwner };
  } catch {
    return { ino, text, owner: undefined };
  }
}

function locked(lock: string, owner: LockOwner | undefined): PgreplError {
  return new PgreplError(
    'E_LOCKED',
    owner
      ? `another pgrepl (pid ${owner.pid}, \`${owner.command}\`, since ${owner.since}) is changing this cluster; ` +
          'wait for it to finish, then try again'
      : `the cluster lock ${lock} is not pgrepl's (it cannot be read as one); if no pgrepl runs, remove it`,
  );
}
