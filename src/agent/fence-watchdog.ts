/**
 * The fence watchdog: a process of its own beside each agent, so that a primary never outlives the
 * lease it runs under. The agent writes `{ until, pid }` to the fence file every loop: `until` is
 * when its lease could first run out for the others (minus a margin), `pid` the postmaster that
 * runs as primary under it. When `until` passes without a newer one (the agent died, hangs, is
 * stopped with SIGSTOP, or cannot reach etcd), the watchdog kills that postmaster's process group
 * with SIGKILL: no backend of it can acknowledge another commit; an order without a PID (armed
 * before a restart in place) names whichever postmaster owns the data directory at the deadline.
 * Each order is carried out once. `{ until: null }` disarms it; the file's removal ends it. Linux's
 * /dev/watchdog is the same idea for a whole machine; these hosts have none, and this one can be
 * tested.
 *
 * Run as `node fence-watchdog.js <fence-file> <data-dir>`; it imports nothing of pgrepl but the
 * order's format (fence-order.ts) and the monotonic clock the order is on, to stay small. It reads the order when the agent writes one
 * (inotify) and at the order's deadline, so an idle watchdog costs next to no CPU.
 */
import { readFileSync, watch as watchFile } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monotonicNow } from '../monotonic-now.js';
import { decodeFenceOrder } from './fence-order.js';
import type { FenceOrder } from './fence-order.js';

/**
 * How often the order is read without a change seen: inotify tells of every write at once, and the
 * deadline of the order in force has a timer of its own, so this only bounds how late an order is
 * read if an event were lost. Without inotify (no watch could be set), every FALLBACK_POLL_MS.
 */
const SAFETY_POLL_MS = 500;
const FALLBACK_POLL_MS = 25;

function readOrder(file: string): FenceOrder | 'gone' | 'unreadable' {
  try {
    // A write half done, or a file of an older pgrepl, is not an order: the last one read holds.
    return decodeFenceOrder(readFileSync(file, 'latin1')) ?? 'unreadable';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : 'unreadable';
  }
}

function postmasterPid(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function kill(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // the group or the process is gone already
    }
  }
}

/** An order's identity: each is carried out once. */
const keyOf = (o: FenceOrder) => `${o.until}:${o.pid}`;

function watch(file: string, dataDir: string): void {
  let last: FenceOrder = { until: null, pid: null };
  // The order carried out last: each is carried out once, so a postmaster started after its
  // deadline (a rejoin, by a new agent) is not killed for an old one.
  let fired: string | null = null;
  const tick = () => {
    const order = readOrder(file);
    if (order !== 'gone' && order !== 'unreadable') last = order;
    const { until, pid } = last;
    const key = keyOf(last);
    // The agent removed the file: it stopped cleanly and disarmed. An armed order still holds,
    // since a removed file could also be an accident; it is carried out, then the watchdog ends.
    if (order === 'gone' && (until === null || fired === key)) process.exit(0);
    if (until !== null && monotonicNow() >= until && fired !== key) {
      // The postmaster the order names, and only while it still owns the data directory (a PID
      // reused by another process is left alone); with no PID, whichever owns it then: a primary
      // restarted in place, whose PID the agent did not know when it armed the order.
      const owner = postmasterPid(dataDir);
      if (owner !== null && (pid === null || owner === pid)) {
        kill(owner);
        process.stderr.write(
          `${new Date().toISOString()} fence watchdog: lease deadline passed, killed postmaster ${owner} of ${dataDir}\n`,
        );
      }
      fired = key;
      if (order === 'gone') process.exit(0);
    }
  };
  // One timer: the next read, at the order's deadline or at the next safety poll, whichever is first.
  let timer: NodeJS.Timeout | undefined;
  let pollMs = SAFETY_POLL_MS;
  const run = () => {
    clearTimeout(timer);
    tick();
    const { until } = last;
    const toDeadline = until === null || fired === keyOf(last) ? pollMs : until - monotonicNow();
    timer = setTimeout(run, Math.max(0, Math.min(pollMs, toDeadline)));
  };
  try {
    // The agent overwrites the order in place: each write is an event on this one inode. Its removal
    // (or any failure of the watch) ends the watch, and reading falls back to the fast poll.
    const watcher = watchFile(file, { persistent: false }, (event) =>
      event === 'rename' ? stopWatching() : run(),
    );
    const stopWatching = () => {
      watcher.close();
      pollMs = FALLBACK_POLL_MS;
      run();
    };
    watcher.on('error', stopWatching);
  } catch {
    pollMs = FALLBACK_POLL_MS;
  }
  run();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, dataDir] = process.argv.slice(2);
  if (!file || !dataDir) {
    process.stderr.write('usage: fence-watchdog <fence-file> <data-dir>\n');
    process.exit(2);
  }
  watch(file, dataDir);
}
