import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandRunner } from '../../postgres/command-runner.js';
import { procStat } from '../../postgres/instance-control.js';

/** One program pgrepl started and has not yet seen exit: enough to find it again, and only it. */
interface ChildRecord {
  readonly pid: number;
  /** Its start time in clock ticks since boot (/proc/PID/stat): a reused PID has another. */
  readonly started: string;
  readonly command: string;
  readonly owner: number;
  readonly ownerStarted: string;
}

/** A running process's start time; null when it is gone, a zombie, or this is not Linux. */
function startTime(pid: number): string | null {
  const st = procStat(pid);
  return st === null || st.state === 'Z' ? null : st.started;
}

const alive = (pid: number, started: string) => startTime(pid) === started;

/**
 * A runner that records every child it starts in `dir` (one file each, removed when the child
 * exits). Children run in process groups of their own, so a pgrepl killed by SIGKILL leaves them
 * running (a pg_basebackup still copying into the clone's temp dir); the records let the next
 * command find and stop exactly them (reapOrphans). Nothing is recorded while `dir`'s parent (the
 * state dir) does not exist yet.
 */
export function recordingRunner(inner: CommandRunner, dir: string): CommandRunner {
  const self = { pid: process.pid, started: startTime(process.pid) ?? '' };
  return {
    ...inner,
    async run(command, args, options = {}) {
      let file: string | undefined;
      const record = (pid: number) => {
        const started = startTime(pid);
        if (started === null) return;
        try {
          mkdirSync(dir, { recursive: false, mode: 0o700 });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return;
        }
        const r: ChildRecord = { pid, started, command, owner: self.pid, ownerStarted: self.started };
        file = join(dir, `${pid}.json`);
        writeFileSync(file, JSON.stringify(r), { mode: 0o600 });
      };
      try {
        return await inner.run(command, args, {
          ...options,
          onSpawn: (pid) => {
            record(pid);
            options.onSpawn?.(pid);
          },
        });
      } finally {
        if (file !== undefined) rmSync(file, { force: true });
      }
    },
  };
}

/** Where a cluster's child records live: beside its journal, in the state dir. */
export const childRecordsDir = (stateDir: string) => join(stateDir, 'children');

/**
 * Stops, by process group and SIGKILL, every recorded child whose pgrepl is gone (it was killed),
 * waits until each is gone, and removes the records. A child whose pgrepl still runs is left alone.
 * Returns a description of each child stopped.
 */
export async function reapOrphans(dir: string): Promise<string[]> {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const stopped: string[] = [];
  for (const f of files) {
    let r: ChildRecord;
    try {
      r = JSON.parse(readFileSync(join(dir, f), 'utf8')) as ChildRecord;
    } catch {
      rmSync(join(dir, f), { force: true });
      continue;
    }
    if (alive(r.owner, r.ownerStarted)) continue;
    if (alive(r.pid, r.started)) {
      try {
        process.kill(-r.pid, 'SIGKILL');
      } catch {
        // its group is gone already
      }
      for (let i = 0; i < 200 && alive(r.pid, r.started); i++)
        await new Promise((res) => setTimeout(res, 25));
      stopped.push(
        `${r.command.split('/').at(-1) ?? r.command} (pid ${r.pid}, left by pgrepl pid ${r.owner})`,
      );
    }
    rmSync(join(dir, f), { force: true });
  }
  return stopped;
}
