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

/**
 * Where the reader stops in front of the record at X: the end of the valid WAL, as crash recovery
 * finds it. Page-level failures (a recycled or zeroed page, a missing continuation) name no such
 * position and give no answer.
 */
const END_AT =
  /error in WAL record at [0-9A-F]+\/[0-9A-F]+: (?:invalid record length at|invalid resource manager ID \d+ at|record with incorrect prev-link [0-9A-F]+\/[0-9A-F]+ at|incorrect resource manager data checksum in record at) ([0-9A-F]+\/[0-9A-F]+)/;

/**
 * The end of a stopped node's valid WAL on `control.timeline`: where its last record ends, read from
 * its last checkpoint on (pg_waldump on its pg_wal). Nothing past it can be replayed, so its pages
 * hold nothing past it either. null when pg_waldump does not say where it stopped: the reader ran
 * into the last segment's end, or a page it could not use.
 */
export async function readWalEnd(
  env: InstanceEnv,
  dataDir: string,
  control: { timeline: number; checkpointLsn: string },
  upTo: bigint,
): Promise<string | null> {
  // -e at the end of the last segment file (`upTo`): past it pg_waldump would wait 5 s for a file
  // that never comes.
  const r = await env.runner.run(
    join(env.bins.binDir, 'pg_waldump'),
    [
      '--quiet',
      '-p',
      join(dataDir, 'pg_wal'),
      '-t',
      String(control.timeline),
      '-s',
      control.checkpointLsn,
      '-e',
      formatLsn(upTo),
    ],
    { runAs: env.runAs, timeoutMs: 5 * 60_000 },
  );
  const at = END_AT.exec(r.stderr)?.[1];
  return at === undefined ? null : formatLsn(parseLsn(at));
}
