import { spawn } from 'node:child_process';
import { closeSync, fchownSync, openSync } from 'node:fs';
import { PgreplError } from '../errors.js';

/** Who a child runs as; undefined means the current user. */
export interface RunAs {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  runAs?: RunAs | undefined;
  cwd?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called with each line (split on \n or \r) of stderr as it arrives, for progress. */
  onStderrLine?: (line: string) => void;
  /** Called with the child's PID once it runs, so a caller can stop it by PID. */
  onSpawn?: (pid: number) => void;
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A server started by `daemon`: its PID, and its exit code once it exits while pgrepl still runs. */
export interface Daemon {
  readonly pid: number;
  readonly exited: Promise<number>;
}

/** Runs a program with an argument array (never a shell). The one way pgrepl starts processes. */
export interface CommandRunner {
  run(command: string, args: readonly string[], options?: RunOptions): Promise<CommandResult>;
  /**
   * Starts a long-running program in a session (and process group) of its own, stdin from /dev/null,
   * stdout and stderr appended to `logFile`; it outlives pgrepl. Resolves once it runs.
   */
  daemon(
    command: string,
    args: readonly string[],
    options: { runAs?: RunAs | undefined; logFile: string },
  ): Promise<Daemon>;
}

/** Process groups of the children running now, so an interrupted pgrepl can stop them. */
const liveGroups = new Set<number>();

/** Kills every child process group pgrepl started and that still runs (on SIGINT/SIGTERM). */
export function killLiveChildren(): void {
  for (const pgid of liveGroups) killGroup(pgid);
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // ESRCH: the group is already gone
  }
}

/**
 * The real runner: spawn without a shell, stream stderr lines, enforce timeouts, kill on abort.
 * Each child gets its own process group, because some programs fork helpers that outlive them
 * (pg_basebackup's WAL streamer keeps streaming, and holds our pipes, when its parent is killed);
 * when a child fails, times out or is aborted, its whole group is killed, by PGID.
 */
export const processRunner: CommandRunner = {
  run(command, args, options = {}) {
    return new Promise((resolvePromise, reject) => {
      // An abort that came before the start would never fire its event: nothing is started then.
      if (options.signal?.aborted) return reject(options.signal.reason as Error);
      const { runAs } = options;
      const child = spawn(command, args, {
        // A run-as user may not be able to enter our cwd (e.g. /root), so its programs start in /.
        cwd: options.cwd ?? (runAs ? '/' : process.cwd()),
        env: baseEnv(options.env, runAs),
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
        ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
      });
      const pgid = child.pid;
      if (pgid !== undefined) liveGroups.add(pgid);
      let stdout = '';
      let stderr = '';
      let partial = '';
      let settled = false;
      let exitCode: number | undefined;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(grace);
        if (pgid !== undefined) liveGroups.delete(pgid);
        options.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = () => pgid !== undefined && killGroup(pgid);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              if (pgid !== undefined) killGroup(pgid);
              finish(() =>
                reject(
                  new PgreplError(
                    'E_TIMEOUT',
                    `${command} did not finish within ${options.timeoutMs} ms and was killed`,
                  ),
                ),
              );
            }, options.timeoutMs);
      let grace: NodeJS.Timeout | undefined;
      if (pgid !== undefined) options.onSpawn?.(pgid);
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        if (!options.onStderrLine) return;
        const parts = (partial + d).split(/[\r\n]/);
        partial = parts.pop() ?? '';
        for (const line of parts) if (line.trim() !== '') options.onStderrLine(line);
      });
      const done = () => {
        if (partial.trim() !== '') options.onStderrLine?.(partial);
        finish(() => resolvePromise({ code: exitCode ?? 1, stdout, stderr }));
      };
      child.on('error', (err) =>
        finish(() =>
          reject(
            new PgreplError('E_COMMAND_FAILED', `could not run ${command}: ${err.message}`, { cause: err }),
          ),
        ),
      );
      child.on('exit', (code, signal) => {
        exitCode = code ?? (signal ? 128 : 1);
        // A failed program's helpers must not outlive it (and keep our pipes open).
        if (exitCode !== 0 && pgid !== undefined) killGroup(pgid);
        // Output normally ends with the exit; a helper that still holds the pipes must not hang us.
        grace = setTimeout(done, 500);
      });
      child.on('close', done);
    });
  },

  daemon(command, args, { runAs, logFile }) {
    // The log belongs to the server's user, as when pg_ctl (run as that user) creates it.
    const log = openSync(logFile, 'a', 0o600);
    try {
      if (runAs) fchownSync(log, runAs.uid, runAs.gid);
      const child = spawn(command, args, {
        cwd: '/',
        env: baseEnv(undefined, runAs),
        stdio: ['ignore', log, log],
        detached: true,
        ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
      });
      child.unref();
      const exited = new Promise<number>((resolveExit) =>
        child.on('exit', (code, signal) => resolveExit(code ?? (signal ? 128 : 1))),
      );
      return new Promise((resolvePromise, reject) => {
        child.once('spawn', () => resolvePromise({ pid: child.pid as number, exited }));
        child.once('error', (err) =>
          reject(
            new PgreplError('E_COMMAND_FAILED', `could not run ${command}: ${err.message}`, { cause: err }),
          ),
        );
      });
    } finally {
      closeSync(log);
    }
  },
};

/**
 * A small, predictable environment: no PG* variables leak in from the caller's shell (they would
 * redirect pg_basebackup or psql to another server), and HOME/USER match the run-as user.
 */
function baseEnv(
  extra: Record<string, string> | undefined,
  runAs: RunAs | undefined,
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
  };
  if (runAs) {
    env['HOME'] = runAs.home;
    env['USER'] = runAs.name;
  } else if (process.env['HOME'] !== undefined) env['HOME'] = process.env['HOME'];
  return { ...env, ...extra };
}

/** Throws E_COMMAND_FAILED with the program's own last words when it exited non-zero. */
export function checkResult(what: string, result: CommandResult, hint = ''): CommandResult {
  if (result.code === 0) return result;
  const tail = result.stderr.trim().split('\n').slice(-5).join('\n  ');
  throw new PgreplError(
    'E_COMMAND_FAILED',
    `${what} failed (exit ${result.code}):\n  ${tail}${hint ? `\n${hint}` : ''}`,
  );
}
