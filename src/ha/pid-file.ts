import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { procStat } from '../postgres/instance-control.js';
import { monotonicNow } from '../monotonic-now.js';

/**
 * A background process pgrepl started (an agent, its fence watchdog, the local etcd), recorded by
 * PID and start time: a PID the kernel gave to another process since is not taken for it.
 */
interface PidRecord {
  readonly pid: number;
  readonly started: string;
}

const startOf = (pid: number) => {
  const st = procStat(pid);
  return st === null || st.state === 'Z' ? null : st.started;
};

export function writePidFile(path: string, pid: number): void {
  writeFileSync(path, `${JSON.stringify({ pid, started: startOf(pid) ?? '' })}\n`, { mode: 0o600 });
}

/**
 * Starts `command` in a session of its own, output appended to `logFile`, and records it in
 * `pidFile`: it outlives this process and is stopped by PID (stopRecorded), never by name.
 */
export function spawnRecorded(
  command: string,
  args: string[],
  logFile: string,
  pidFile: string,
  cwd: string,
): number {
  const log = openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(command, args, { stdio: ['ignore', log, log], detached: true, cwd });
    child.unref();
    writePidFile(pidFile, child.pid as number);
    return child.pid as number;
  } finally {
    closeSync(log);
  }
}

/** The recorded process's PID while that very process runs; null otherwise. */
export function livePid(path: string): number | null {
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as PidRecord;
    return startOf(r.pid) === r.started ? r.pid : null;
  } catch {
    return null;
  }
}

/**
 * Stops the recorded process: `signal`, then SIGKILL when it has not gone after `graceMs`.
 * Returns whether one was running. Only that PID is signalled, and only while it is that process.
 */
export async function stopRecorded(path: string, signal: NodeJS.Signals, graceMs: number): Promise<boolean> {
  const pid = livePid(path);
  if (pid === null) {
    rmSync(path, { force: true });
    return false;
  }
  const send = (s: NodeJS.Signals) => {
    try {
      process.kill(pid, s);
    } catch {
      // gone meanwhile
    }
  };
  send(signal);
  const deadline = monotonicNow() + graceMs;
  while (livePid(path) !== null && monotonicNow() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (livePid(path) !== null) send('SIGKILL');
  while (livePid(path) !== null) await new Promise((r) => setTimeout(r, 20));
  rmSync(path, { force: true });
  return true;
}
