import {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { PgreplError } from '../errors.js';
import { checkResult } from './command-runner.js';
import type { CommandRunner, RunAs } from './command-runner.js';
import type { PgBinaries } from './find-binaries.js';
import { writeOwnedFile } from './owned-paths.js';
import { syncFileSystem } from './sync-file-system.js';
import { monotonicNow } from '../monotonic-now.js';

/** What one instance's control needs: its programs, the user they run as, and the runner. */
export interface InstanceEnv {
  readonly bins: PgBinaries;
  readonly runAs: RunAs | undefined;
  readonly runner: CommandRunner;
}

/** What the data directory on disk says, read without starting anything. */
export interface DataDirState {
  readonly exists: boolean;
  /** PG_VERSION present: initdb or a clone completed. */
  readonly initialized: boolean;
  readonly standbySignal: boolean;
  /** The postmaster PID when one is alive for this directory. */
  readonly pid: number | null;
}

/** Reads PG_VERSION, standby.signal and postmaster.pid; a PID counts only if that process is alive. */
export function readDataDir(dataDir: string): DataDirState {
  const exists = existsSync(dataDir);
  return {
    exists,
    initialized: exists && existsSync(join(dataDir, 'PG_VERSION')),
    standbySignal: exists && existsSync(join(dataDir, 'standby.signal')),
    pid: exists ? livePostmasterPid(dataDir) : null,
  };
}

/**
 * postmaster.pid's lines (1: PID, 7: shared memory key and id, 8: status such as "ready"), or null
 * when the directory has none.
 */
function readLockFile(dataDir: string): string[] | null {
  try {
    return readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return null;
  }
}

function lockFilePid(lines: readonly string[] | null): number | null {
  const pid = Number.parseInt(lines?.[0] ?? '', 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

function livePostmasterPid(dataDir: string): number | null {
  const pid = lockFilePid(readLockFile(dataDir));
  return pid !== null && isAlive(pid) ? pid : null;
}

/** Whether `pid` runs: in the process table and not a zombie (a killed postmaster not yet reaped is dead for our purposes). */
export function isAlive(pid: number): boolean {
  if (!processExists(pid)) return false;
  // no /proc (not Linux): trust kill(0)
  return procStat(pid)?.state !== 'Z';
}

/**
 * A process's state letter (R, S, Z, …) and start time (clock ticks since boot: a reused PID has
 * another) from /proc/PID/stat; null when it is gone or there is no /proc.
 */
export function procStat(pid: number): { state: string; started: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": field 3 (state) onwards; the start time is field 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', started: fields[19] ?? '' };
  } catch {
    return null;
  }
}

/**
 * Waits until a dead server is wholly gone: no process attached to its shared memory, and its
 * postmaster out of the process table or, while it stays an unreaped zombie (PID 1 of a container
 * may take seconds, or never), its stale lock file removed. Until then PostgreSQL refuses the
 * directory ("lock file postmaster.pid already exists", "pre-existing shared memory block is still
 * in use"): `postgres --single` (run by pg_rewind) and a restart both fail.
 */
export async function waitPostmasterGone(
  dataDir: string,
  o: { timeoutMs?: number; onWait?: (why: string) => void } = {},
): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 15_000;
  const deadline = monotonicNow() + timeoutMs;
  let told = false;
  for (;;) {
    const lines = readLockFile(dataDir);
    const pid = lockFilePid(lines);
    if (pid === null) return;
    if (isAlive(pid)) {
      throw new PgreplError('E_DATA_DIR_IN_USE', `a server (PID ${pid}) still runs in ${dataDir}`);
    }
    // Not alive but still in the process table: an unreaped zombie.
    const zombie = processExists(pid);
    const attached = shmAttached(lines);
    if (!zombie && attached === 0) return;
    if (zombie && attached === 0) {
      // Dead, and nothing of its server uses the shared memory: PostgreSQL would take the lock over
      // itself if the kernel did not still list the PID. Waiting for the reap (an init that reaps
      // every few seconds, or never) would only delay a restart or a failover.
      rmSync(join(dataDir, 'postmaster.pid'), { force: true });
      o.onWait?.(`its killed postmaster (PID ${pid}) is an unreaped zombie; its stale lock file was removed`);
      return;
    }
    if (!told) {
      told = true;
      o.onWait?.(
        zombie
          ? `its killed postmaster (PID ${pid}) is a zombie not reaped yet`
          : `${attached} process(es) of its killed server still use its shared memory`,
      );
    }
    if (monotonicNow() > deadline) {
      throw new PgreplError(
        'E_DATA_DIR_IN_USE',
        zombie
          ? `the killed postmaster of ${dataDir} (PID ${pid}) is a zombie its parent has not reaped in ` +
              `${timeoutMs / 1000} s, and PostgreSQL takes its lock file as held until it is; ` +
              'is PID 1 of this container an init that reaps its children (e.g. `docker run --init`)?'
          : `${attached} process(es) of the killed server of ${dataDir} still use its shared memory after ` +
              `${timeoutMs / 1000} s; find them with \`ps -u postgres\` and stop them`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * How many processes are attached to the shared memory segment postmaster.pid names (line 7: key
 * and id), from /proc/sysvipc/shm; 0 when it is gone, or where that cannot be read (not Linux).
 */
function shmAttached(lines: readonly string[] | null): number {
  const id = lines?.[6]?.trim().split(/\s+/)[1];
  if (id === undefined) return 0;
  try {
    const row = readFileSync('/proc/sysvipc/shm', 'utf8')
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .find((cols) => cols[1] === id);
    return Number(row?.[6] ?? 0);
  } catch {
    return 0;
  }
}

/** Whether `pid` is in the process table at all, a zombie included (EPERM: someone else's). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const bin = (env: InstanceEnv, program: string) => join(env.bins.binDir, program);

/**
 * initdb with data checksums (so pg_rewind works later) and SCRAM; the superuser password goes
 * through a 0600 file that is removed afterwards, never through argv. One syncfs instead of
 * initdb's fsync of each file (see syncFileSystem).
 */
export async function initdb(
  env: InstanceEnv,
  opts: {
    dataDir: string;
    superuser: string;
    password: string;
    secretsDir: string;
    /** MB; undefined: PostgreSQL's 16. */
    walSegmentSize?: number | undefined;
  },
): Promise<void> {
  const pwfile = join(opts.secretsDir, `.initdb-${process.pid}-${randomBytes(6).toString('hex')}`);
  writeOwnedFile(pwfile, `${opts.password}\n`, 0o600, env.runAs);
  try {
    const r = await env.runner.run(
      bin(env, 'initdb'),
      [
        '-D',
        opts.dataDir,
        '-U',
        opts.superuser,
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        '--data-checksums',
        '--encoding=UTF8',
        '--locale=C.UTF-8',
        '--no-sync',
        ...walSegmentArgs(opts.walSegmentSize),
      ],
      { runAs: env.runAs, timeoutMs: 120_000 },
    );
    checkResult(`initdb of ${opts.dataDir}`, r);
    await syncFileSystem(env.runner, opts.dataDir);
  } finally {
    rmSync(pwfile, { force: true });
  }
}

/** initdb's option for a WAL segment size other than PostgreSQL's default; none for the default. */
export function walSegmentArgs(mb: number | undefined): string[] {
  return mb === undefined || mb === 16 ? [] : [`--wal-segsize=${mb}`];
}

/**
 * Removes the superuser password files that an initdb of a killed pgrepl left in `secretsDir`
 * (named `.initdb-<pid>-…` after the pgrepl that wrote them; that process is gone).
 */
export function removeLeftoverInitdbSecrets(secretsDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(secretsDir);
  } catch {
    return [];
  }
  const left = names.filter((f) => {
    const pid = Number(/^\.initdb-(\d+)-/.exec(f)?.[1]);
    return Number.isInteger(pid) && pid > 0 && !processExists(pid);
  });
  for (const f of left) rmSync(join(secretsDir, f), { force: true });
  return left;
}

/**
 * Starts the server and waits until it accepts connections (or, for a standby, reaches consistency).
 * The postmaster is started directly, as pg_ctl would start it (own session, stdin from /dev/null,
 * output appended to the log): pg_ctl first runs `postgres -V` and a shell (~0.1 s per start here)
 * and then looks only every 100 ms. postmaster.pid is polled every 10 ms instead; a postmaster that
 * exits before it is ready fails the start with the end of its log.
 */
export async function startInstance(
  env: InstanceEnv,
  opts: { dataDir: string; logFile: string },
): Promise<void> {
  const running = livePostmasterPid(opts.dataDir);
  if (running !== null)
    throw new PgreplError('E_DATA_DIR_IN_USE', `a server already runs in ${opts.dataDir} (PID ${running})`);
  const server = await env.runner.daemon(bin(env, 'postgres'), ['-D', opts.dataDir], {
    runAs: env.runAs,
    logFile: opts.logFile,
  });
  let exitCode: number | null = null;
  void server.exited.then((code) => (exitCode = code));
  // A standby that must replay a long backlog before it is consistent can take minutes.
  const deadline = monotonicNow() + 120_000;
  const seeLog = () => `see the server log: ${opts.logFile}\n${logTail(opts.logFile)}`;
  for (;;) {
    const lines = readLockFile(opts.dataDir);
    const status = lines?.[7]?.trim();
    if ((status === 'ready' || status === 'standby') && lockFilePid(lines) === server.pid) return;
    if (exitCode !== null)
      throw new PgreplError(
        'E_COMMAND_FAILED',
        `the server in ${opts.dataDir} exited (code ${exitCode}) before it was ready; ${seeLog()}`,
      );
    if (monotonicNow() > deadline)
      throw new PgreplError(
        'E_TIMEOUT',
        `the server in ${opts.dataDir} (PID ${server.pid}) is not ready after 2 minutes and still starting; ${seeLog()}`,
      );
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Stops the server: `fast` rolls back sessions and writes a shutdown checkpoint; `immediate` does
 * not. It sends the postmaster the signal `pg_ctl stop` would (SIGINT, SIGQUIT), then watches for
 * postmaster.pid to go every 5 ms rather than pg_ctl's 100: a switchover's write gap includes this wait.
 */
export async function stopInstance(opts: {
  dataDir: string;
  mode: 'fast' | 'immediate';
  timeoutSec?: number;
}): Promise<void> {
  const seconds = opts.timeoutSec ?? 120;
  const pid = signalStop(opts.dataDir, opts.mode);
  if (pid === null) return;
  const deadline = monotonicNow() + seconds * 1000;
  while (livePostmasterPid(opts.dataDir) === pid) {
    if (monotonicNow() > deadline)
      throw new PgreplError(
        'E_TIMEOUT',
        `the server in ${opts.dataDir} (PID ${pid}) did not stop within ${seconds} s (${opts.mode} shutdown)`,
      );
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Sends the postmaster the signal of a `fast` (SIGINT) or `immediate` (SIGQUIT) shutdown, without
 * waiting; returns its PID, or null when no server runs. A second request of the same kind while it
 * shuts down changes nothing.
 */
export function signalStop(dataDir: string, mode: 'fast' | 'immediate'): number | null {
  const pid = livePostmasterPid(dataDir);
  if (pid === null) return null;
  try {
    process.kill(pid, mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return null;
    throw new PgreplError('E_COMMAND_FAILED', `cannot signal the server in ${dataDir} (PID ${pid})`, {
      cause: err,
    });
  }
  return pid;
}

/**
 * Kills a server and every process it forked, by the process group of the PID in postmaster.pid
 * (pg_ctl starts the postmaster as a session leader, so its backends share that group). Used to
 * fence a primary that does not stop: none of its backends may acknowledge one more commit.
 */
export async function killInstance(dataDir: string): Promise<boolean> {
  const pid = readDataDir(dataDir).pid;
  if (pid === null) return true;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already, or not ours to kill: the check below tells
    }
  }
  for (let i = 0; i < 100 && readDataDir(dataDir).pid !== null; i++)
    await new Promise((r) => setTimeout(r, 50));
  return readDataDir(dataDir).pid === null;
}

/** Makes a running server re-read postgresql.conf and pg_hba.conf. */
export function reloadInstance(dataDir: string): void {
  // The SIGHUP `pg_ctl reload` sends, without spawning it: a follow's re-point is on the failover path.
  const pid = livePostmasterPid(dataDir);
  if (pid === null) return;
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return;
    throw new PgreplError(
      'E_COMMAND_FAILED',
      `cannot signal the server in ${dataDir} (PID ${pid}) to reload`,
      {
        cause: err,
      },
    );
  }
}

/** Fails with E_PORT_IN_USE when something else listens on host:port. */
export async function assertPortFree(host: string, port: number, node: string): Promise<void> {
  await new Promise<void>((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(
          new PgreplError(
            'E_PORT_IN_USE',
            `port ${port} on ${host} (node ${node}) is taken by another process; stop it or give ${node} another port in the spec`,
            { cause: err },
          ),
        );
      } else if (err.code === 'EADDRNOTAVAIL') {
        reject(
          new PgreplError('E_NOT_LOCAL', `address ${host} of node ${node} is not on this machine`, {
            cause: err,
          }),
        );
      } else reject(err);
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolvePromise()));
  });
}

/**
 * Whether something accepts TCP connections on host:port. A stopped (SIGSTOP) server still does: the
 * kernel completes the handshake. No answer within the timeout counts as yes, to stay on the safe side.
 */
export function acceptsConnections(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = connect({ host, port });
    const done = (answer: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolvePromise(answer);
    };
    const timer = setTimeout(() => done(true), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** How long a server log is now, so that a later look reads only what came after. */
export function logLength(logFile: string): number {
  try {
    return statSync(logFile).size;
  } catch {
    return 0;
  }
}

/** What a server log says from byte `from` on (only that part is read). */
export function logSince(logFile: string, from: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(logFile, 'r');
    const buf = Buffer.alloc(Math.max(0, fstatSync(fd).size - from));
    const n = readSync(fd, buf, 0, buf.length, from);
    return buf.subarray(0, n).toString('utf8');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * A standby's walreceiver line saying its upstream no longer has the WAL it asks for, or null. It
 * will never stream from there, however long it retries.
 */
export function walRemovedLine(log: string): string | null {
  return /requested WAL segment \S+ has already been removed/.exec(log)?.[0] ?? null;
}

/** The last lines of a server log, for error messages. */
export function logTail(logFile: string, lines = 8): string {
  try {
    return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
