import { PgreplError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { CommandRunner, RunAs } from '../postgres/command-runner.js';
import type { PgbackrestConfFiles } from './pgbackrest-commands.js';

/** How pgBackRest is run: as the PostgreSQL OS user, with the superuser's passfile for its connections. */
export interface PgbackrestEnv {
  readonly runner: CommandRunner;
  readonly runAs: RunAs | undefined;
  /** A libpq passfile with the superuser's password, named to pgBackRest in PGPASSFILE (never in argv). */
  readonly passfile: string | undefined;
  /** An S3 repository's keys as PGBACKREST_REPO1_S3_KEY(_SECRET): in the environment, never in argv. */
  readonly credentials: Readonly<Record<string, string>>;
}

export interface PgbackrestRun {
  /**
   * The node's pgbackrest.conf (and the include directory of an S3 repository's keys, which a
   * restore names in the restore_command it writes), or null for none (every option on the command line).
   */
  readonly conf: PgbackrestConfFiles | null;
  readonly stanza: string;
  readonly command: string;
  /** Further options, `--name=value`; paths and numbers only, never a secret. */
  readonly options?: readonly string[];
  /** Arguments after the command (repo-ls's path). */
  readonly params?: readonly string[];
  /**
   * The share of the data copied so far (0-100), told each time it passes another tenth: backup
   * and restore log each file they copy with the running share (with --log-level-stderr=detail).
   */
  readonly onPercent?: (percent: number) => void;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

/**
 * What pgBackRest's error codes mean to a pgrepl user, and what to do. Its own message follows:
 * the code says which of pgrepl's errors it is, the message says which file or setting.
 */
const KNOWN_ERRORS: Readonly<Record<number, { code: ErrorCode; hint: string }>> = {
  28: {
    code: 'E_STANZA_MISMATCH',
    hint: "the repository's stanza belongs to another database: point backup.repo at another path, or delete that stanza (`pgbackrest stanza-delete`) if its backups are not needed",
  },
  55: { code: 'E_NO_STANZA', hint: 'the repository has no stanza for this cluster yet: run `pgrepl up`' },
  75: {
    code: 'E_RESTORE_TARGET',
    hint: 'no backup ends before that target: `pgrepl backups` lists what the repository can restore',
  },
  82: {
    code: 'E_ARCHIVE_FAILING',
    hint: "the primary did not archive its WAL in time: `pgrepl status` shows the archiver's last failure, the server log says why",
  },
};

/**
 * Runs one pgBackRest command and returns its stdout. A failure becomes a coded error carrying
 * pgBackRest's own `ERROR: [nnn]: ...` line; the log of the command is in the conf's log-path.
 */
export async function runPgbackrest(env: PgbackrestEnv, r: PgbackrestRun): Promise<string> {
  const args = [
    ...(r.conf === null
      ? ['--no-config']
      : [
          `--config=${r.conf.confFile}`,
          ...(r.conf.includeDir === null ? [] : [`--config-include-path=${r.conf.includeDir}`]),
        ]),
    `--stanza=${r.stanza}`,
    ...(r.options ?? []),
    r.command,
    ...(r.params ?? []),
  ];
  const result = await env.runner
    .run('pgbackrest', args, {
      runAs: env.runAs,
      env: { ...env.credentials, ...(env.passfile === undefined ? {} : { PGPASSFILE: env.passfile }) },
      ...(r.signal ? { signal: r.signal } : {}),
      ...(r.timeoutMs === undefined ? {} : { timeoutMs: r.timeoutMs }),
      ...(r.onPercent ? { onStderrLine: tenths(r.onPercent) } : {}),
    })
    .catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new PgreplError(
          'E_NO_PGBACKREST',
          'pgbackrest is not installed (or not on PATH): install it (Debian: apt-get install pgbackrest) on every host of the cluster',
          { cause: err },
        );
      throw err;
    });
  if (result.code === 0) return result.stdout;
  throw pgbackrestError(r.command, `${result.stderr}\n${result.stdout}`, result.code);
}

/** The coded error of a failed pgBackRest command, from its `ERROR: [nnn]: message` line. */
export function pgbackrestError(command: string, output: string, exitCode: number): PgreplError {
  const m = /ERROR: \[(\d+)\]: ([^\n]*)/.exec(output);
  const message = m?.[2] ?? (output.trim().split('\n').slice(-3).join(' ') || `exit ${exitCode}`);
  const known = m ? KNOWN_ERRORS[Number(m[1])] : undefined;
  return new PgreplError(
    known?.code ?? 'E_BACKUP_FAILED',
    `pgbackrest ${command} failed: ${message}${known ? `\n${known.hint}` : ''}`,
  );
}

/** Reads pgBackRest's `... file <path> (<size>, <n>%)` lines; calls `say` once per tenth passed, and at 100. */
function tenths(say: (percent: number) => void): (line: string) => void {
  let told = -1;
  return (line) => {
    const m = /(?:backup|restore) file .*, (\d+(?:\.\d+)?)%\)/.exec(line);
    if (!m) return;
    const step = Math.floor(Number(m[1]) / 10);
    if (step <= told) return;
    told = step;
    say(Math.min(100, step * 10));
  };
}
