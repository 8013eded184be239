import { closeSync, openSync, readSync } from 'node:fs';
import { processExists } from './instance-control.js';

/** Whether one process still runs, asked often and cheaply. */
export interface ProcessWatch {
  readonly pid: number;
  /** False once the process has exited, zombie or reaped. */
  alive(): boolean;
  close(): void;
}

/**
 * Watches `pid` through an open /proc/PID/stat: one pread per question, where reading the file
 * anew costs an open, a stat, a read and a close (the agent asks ten times a second, and that
 * was a tenth of its CPU). The descriptor stays bound to that process: once it is reaped the read
 * fails, even if its PID is reused, and while it is an unreaped zombie the state letter says Z.
 * Without /proc it falls back to kill(pid, 0).
 */
export function watchProcess(pid: number): ProcessWatch {
  let fd: number | null = null;
  try {
    fd = openSync(`/proc/${pid}/stat`, 'r');
  } catch {
    fd = null;
  }
  const buf = Buffer.alloc(512);
  let gone = fd === null && !processExists(pid);
  return {
    pid,
    alive() {
      if (gone) return false;
      if (fd === null) {
        gone = !processExists(pid);
        return !gone;
      }
      try {
        const n = readSync(fd, buf, 0, buf.length, 0);
        // After "pid (comm) " comes the state letter; comm may hold ")" itself, so the last one counts.
        const close = buf.lastIndexOf(0x29, n - 1);
        gone = close < 0 || buf[close + 2] === 0x5a; // 'Z'
      } catch {
        gone = true;
      }
      return !gone;
    },
    close() {
      if (fd !== null) closeSync(fd);
      fd = null;
      gone = true;
    },
  };
}
