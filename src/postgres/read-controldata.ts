import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { checkResult } from './command-runner.js';
import type { InstanceEnv } from './instance-control.js';
import { formatLsn } from './lsn.js';
import { hasTool, toolPath } from './find-binaries.js';

/** The parts of pg_controldata pgrepl decides on. */
export interface ControlData {
  /** e.g. "shut down", "in production", "shut down in recovery". */
  readonly state: string;
  /** Where the last checkpoint record starts; after a clean shutdown, the end of the WAL is just past it. */
  readonly checkpointLsn: string;
  readonly timeline: number;
  /** Size of one WAL segment file (16 MB unless initdb was told otherwise). */
  readonly walSegmentBytes: number;
  /** Size of one WAL page (8 kB unless PostgreSQL was built otherwise). */
  readonly walBlockBytes: number;
}

/**
 * Reads a stopped (or running) data directory's control file with pg_controldata; for an
 * installation without it (a bare server package), straight from global/pg_control, with the WAL
 * segment size the cluster was made with (`walSegmentMb`) and PostgreSQL's 8 kB WAL pages.
 */
export async function readControlData(
  env: InstanceEnv,
  dataDir: string,
  walSegmentMb = 16,
): Promise<ControlData> {
  if (!hasTool(env.bins, 'pg_controldata')) {
    const latest = readLatestCheckpoint(dataDir);
    if (latest) return { ...latest, walSegmentBytes: walSegmentMb * 1024 * 1024, walBlockBytes: 8192 };
  }
  const r = checkResult(
    `pg_controldata of ${dataDir}`,
    await env.runner.run(toolPath(env.bins, 'pg_controldata'), ['-D', dataDir], {
      runAs: env.runAs,
      timeoutMs: 10_000,
    }),
  );
  return parseControlData(r.stdout);
}

export function parseControlData(text: string): ControlData {
  const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return {
    state: field('Database cluster state'),
    checkpointLsn: field('Latest checkpoint location'),
    timeline: Number(field("Latest checkpoint's TimeLineID")),
    walSegmentBytes: Number(field('Bytes per WAL segment')) || 16 * 1024 * 1024,
    walBlockBytes: Number(field('WAL block size')) || 8192,
  };
}

/** What a switchover needs of the control file: the state, and where the latest checkpoint is. */
export type LatestCheckpoint = Pick<ControlData, 'state' | 'checkpointLsn' | 'timeline'>;

/** pg_control_version of PostgreSQL 11–12, 13–16 and 17: the first fields below sit where they did. */
const KNOWN_CONTROL_VERSIONS = new Set([1100, 1201, 1300, 1700]);

/** DBState, as pg_controldata names its values. */
const DB_STATES = [
  'starting up',
  'shut down',
  'shut down in recovery',
  'shutting down',
  'in crash recovery',
  'in archive recovery',
  'in production',
];

/**
 * The latest checkpoint straight from global/pg_control, without starting pg_controldata (some
 * 25 ms, inside a switchover's write gap). ControlFileData opens with system_identifier (0),
 * pg_control_version (8), catalog_version_no (12), state (16), time (24), checkPoint (32) and
 * checkPointCopy, whose redo (40) is followed by ThisTimeLineID (48), in the machine's byte order;
 * the same from PostgreSQL 11 to 17. null for a control file of any other version: read it with
 * readControlData then.
 */
export function readLatestCheckpoint(dataDir: string): LatestCheckpoint | null {
  const file = controlFile(dataDir);
  if (file === null) return null;
  const le = endianness() === 'LE';
  const u32 = (at: number) => (le ? file.readUInt32LE(at) : file.readUInt32BE(at));
  const u64 = (at: number) => (le ? file.readBigUInt64LE(at) : file.readBigUInt64BE(at));
  if (file.length < 56 || !KNOWN_CONTROL_VERSIONS.has(u32(8))) return null;
  const state = DB_STATES[u32(16)];
  if (state === undefined) return null;
  return { state, checkpointLsn: formatLsn(u64(32)), timeline: u32(48) };
}

/**
 * The database system identifier (pg_control's first 8 bytes) as a decimal string, the way
 * pgBackRest and pg_controldata print it; null when the directory holds no control file.
 */
export function readSystemIdentifier(dataDir: string): string | null {
  const file = controlFile(dataDir);
  if (file === null || file.length < 8) return null;
  return (endianness() === 'LE' ? file.readBigUInt64LE(0) : file.readBigUInt64BE(0)).toString();
}

/** global/pg_control's bytes, or null when the directory has none (not initialised, or gone). */
function controlFile(dataDir: string): Buffer | null {
  try {
    return readFileSync(join(dataDir, 'global', 'pg_control'));
  } catch {
    return null;
  }
}
