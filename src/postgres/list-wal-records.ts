import { join } from 'node:path';
import type { InstanceEnv } from './instance-control.js';
import { formatLsn, parseLsn } from './lsn.js';

/**
 * Where the records of a stopped node's WAL on `timeline` start, from the first record at or after
 * `from` up to `to` (pg_waldump on its pg_wal). Empty when none can be read there.
 */
export async function listRecordStarts(
  env: InstanceEnv,
  dataDir: string,
  timeline: number,
  from: bigint,
  to: bigint,
): Promise<bigint[]> {
  const r = await env.runner.run(
    join(env.bins.binDir, 'pg_waldump'),
    ['-p', join(dataDir, 'pg_wal'), '-t', String(timeline), '-s', formatLsn(from), '-e', formatLsn(to)],
    { runAs: env.runAs, timeoutMs: 60_000 },
  );
  return [...r.stdout.matchAll(/\blsn: ([0-9A-F]+\/[0-9A-F]+)/g)].map((m) => parseLsn(m[1] as string));
}
