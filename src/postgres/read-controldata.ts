import { join } from 'node:path';
import { checkResult } from './command-runner.js';
import type { InstanceEnv } from './instance-control.js';

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

/** Reads a stopped (or running) data directory's control file. */
export async function readControlData(env: InstanceEnv, dataDir: string): Promise<ControlData> {
  const r = checkResult(
    `pg_controldata of ${dataDir}`,
    await env.runner.run(join(env.bins.binDir, 'pg_controldata'), ['-D', dataDir], {
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
