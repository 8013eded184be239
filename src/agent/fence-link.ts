import { closeSync, constants, existsSync, openSync, rmSync, writeSync } from 'node:fs';
import { encodeFenceOrder } from './fence-order.js';
import type { FenceOrder } from './fence-order.js';
import { FENCE_WATCHDOG_SCRIPT, LONG_RUNNING_NODE_FLAGS } from '../package-files.js';
import { livePid, spawnRecorded } from '../ha/pid-file.js';
import { watchProcess } from '../postgres/process-watch.js';
import type { ProcessWatch } from '../postgres/process-watch.js';

/** The agent's side of the fence watchdog (fence-watchdog.ts): start it, arm it, disarm it. */
export interface FenceLink {
  /**
   * The postmaster `pid` must be gone by `until` (epoch ms) unless armed again before then; with
   * `pid` null, whichever postmaster owns the data directory then (one about to be started).
   */
  arm(until: number, pid: number | null): void;
  /** Moves an armed order's deadline to `until` (its lease was renewed); a disarmed one stays so. */
  extend(until: number): void;
  disarm(): void;
  /** Disarms and ends the watchdog (a clean stop of the agent). */
  close(): void;
  /** The watchdog's PID, started again if it died. */
  ensureRunning(): number;
}

export interface FenceLinkPaths {
  /** The order file the watchdog polls. */
  readonly file: string;
  readonly pidFile: string;
  readonly logFile: string;
  readonly dataDir: string;
}

/** `onOrder`: told each order written (the agent's trace). */
export function fenceLink(p: FenceLinkPaths, onOrder?: (o: FenceOrder) => void): FenceLink {
  // What this agent last wrote: a replica's agent disarms every loop, and need not rewrite the file.
  let written: string | null = null;
  let order: FenceOrder = { until: null, pid: null };
  let fd: number | null = null;
  const write = (next: FenceOrder) => {
    order = next;
    const bytes = encodeFenceOrder(next);
    const text = bytes.toString('latin1');
    if (text === written) return;
    // Opened once, neither truncated nor appended to: each order overwrites the last in place.
    fd ??= openSync(p.file, constants.O_RDWR | constants.O_CREAT, 0o600);
    writeSync(fd, bytes, 0, bytes.length, 0);
    written = text;
    onOrder?.(next);
  };
  // The watchdog asked after every loop, through an open /proc entry rather than its PID file.
  let watchdog: ProcessWatch | null = null;
  const link: FenceLink = {
    ensureRunning() {
      if (watchdog?.alive()) return watchdog.pid;
      watchdog?.close();
      const pid =
        livePid(p.pidFile) ??
        spawnRecorded(
          process.execPath,
          [...LONG_RUNNING_NODE_FLAGS, '--max-old-space-size=16', FENCE_WATCHDOG_SCRIPT, p.file, p.dataDir],
          p.logFile,
          p.pidFile,
          process.cwd(),
        );
      watchdog = watchProcess(pid);
      return pid;
    },
    arm(until, pid) {
      write({ until, pid });
    },
    extend(until) {
      if (order.until !== null) write({ until, pid: order.pid });
    },
    disarm() {
      write({ until: null, pid: null });
    },
    close() {
      watchdog?.close();
      watchdog = null;
      link.disarm();
      if (fd !== null) closeSync(fd);
      fd = null;
      rmSync(p.file, { force: true });
      written = null;
    },
  };
  // The watchdog needs an order to start with. One left by an earlier agent still holds: it may
  // guard a primary that this agent has not yet decided about.
  if (!existsSync(p.file)) link.disarm();
  return link;
}
