import { join } from 'node:path';
import type { InstanceEnv } from './instance-control.js';
import { formatLsn, parseLsn } from './lsn.js';

/** What pg_rewind said about a target it compared with its source. */
export interface RewindOutcome {
  readonly ok: boolean;
  readonly noRewindRequired: boolean;
  /** pg_rewind's own last words, for errors. */
  readonly output: string;
}

/**
 * Runs pg_rewind (as the run-as user) against a running source. The password comes from the
 * passfile named in the conninfo. pg_rewind is not given -R: pgrepl writes the standby's
 * configuration itself (-R would name the source's superuser in primary_conninfo).
 */
export async function runRewind(
  env: InstanceEnv,
  o: { dataDir: string; sourceConninfo: string },
): Promise<RewindOutcome> {
  const args = ['-D', o.dataDir, `--source-server=${o.sourceConninfo}`, '--progress'];
  const r = await env.runner.run(join(env.bins.binDir, 'pg_rewind'), args, {
    runAs: env.runAs,
    timeoutMs: 30 * 60_000,
  });
  const output = `${r.stdout}\n${r.stderr}`;
  return {
    ok: r.code === 0,
    noRewindRequired: /no rewind required/.test(output),
    output: output.trim().split('\n').slice(-6).join('\n'),
  };
}

/** Commits found in a stopped data directory's WAL from `from` on: what only this node had. */
export interface LostWal {
  readonly from: string;
  /** End of the valid WAL, when pg_waldump found it. */
  readonly to: string | null;
  readonly commits: readonly { xid: number; lsn: string }[];
}

/** Lists the COMMIT records of `timeline` from `from` to the end of the WAL in pg_wal (pg_waldump). */
export async function listCommitsAfter(
  env: InstanceEnv,
  dataDir: string,
  from: string,
  timeline: number,
): Promise<LostWal> {
  const r = await env.runner.run(
    join(env.bins.binDir, 'pg_waldump'),
    ['-p', join(dataDir, 'pg_wal'), '-t', String(timeline), '-s', from, '-r', 'Transaction'],
    { runAs: env.runAs, timeoutMs: 5 * 60_000 },
  );
  const commits = [...r.stdout.matchAll(/tx:\s+(\d+), lsn: ([0-9A-F]+\/[0-9A-F]+).*desc: COMMIT/g)].map(
    (m) => ({
      xid: Number(m[1]),
      lsn: formatLsn(parseLsn(m[2] as string)),
    }),
  );
  // pg_waldump stops at the first invalid record, which is where this node's WAL ends; when
  // there is no record at all past `from`, the node has nothing of its own.
  if (/could not find a valid record after/.test(r.stderr)) return { from, to: from, commits };
  const end = /invalid record length at ([0-9A-F]+\/[0-9A-F]+)/.exec(r.stderr)?.[1];
  return { from, to: end ?? null, commits };
}
