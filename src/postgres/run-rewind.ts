import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { InstanceEnv } from './instance-control.js';
import { readControlData } from './read-controldata.js';
import { syncFileSystem } from './sync-file-system.js';
import { formatLsn, parseLsn, walFileName } from './lsn.js';
import { toolPath } from './find-binaries.js';

/** What pg_rewind said about a target it compared with its source. */
export interface RewindOutcome {
  readonly ok: boolean;
  readonly noRewindRequired: boolean;
  /** What pg_rewind said it had to copy, in MB: changed blocks plus every non-relation file in full. */
  readonly copiedMb: number | null;
  /** pg_rewind's own last words, for errors. */
  readonly output: string;
  /** pg_rewind's error line when it failed ("postgres single-user mode in target cluster failed"). */
  readonly error: string | null;
}

/**
 * Runs pg_rewind (as the run-as user) against a running source. The password comes from the
 * passfile named in the conninfo. pg_rewind is not given -R: pgrepl writes the standby's
 * configuration itself (-R would name the source's superuser in primary_conninfo).
 * pg_rewind is not left to fsync the target file by file either (--no-sync), which it does for every
 * file however few it changed: one syncfs afterwards flushes what it wrote (syncFileSystem).
 */
export async function runRewind(
  env: InstanceEnv,
  o: {
    dataDir: string;
    sourceConninfo: string;
    signal?: AbortSignal | undefined;
    /** Fetch WAL the target's pg_wal lost with its restore_command (the cluster's archive). */
    restoreTargetWal?: boolean;
  },
): Promise<RewindOutcome> {
  const args = [
    '-D',
    o.dataDir,
    `--source-server=${o.sourceConninfo}`,
    '--progress',
    '--no-sync',
    ...(o.restoreTargetWal ? ['--restore-target-wal'] : []),
  ];
  const r = await env.runner.run(toolPath(env.bins, 'pg_rewind'), args, {
    runAs: env.runAs,
    timeoutMs: 30 * 60_000,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  if (r.code === 0) await syncFileSystem(env.runner, o.dataDir);
  const output = `${r.stdout}\n${r.stderr}`;
  return {
    ok: r.code === 0,
    noRewindRequired: /no rewind required/.test(output),
    copiedMb: copiedMb(output),
    output: output.trim().split('\n').slice(-6).join('\n'),
    error: r.code === 0 ? null : rewindError(output),
  };
}

/** "need to copy 67 MB (total source directory size is 86 MB)" → 67 */
export function copiedMb(output: string): number | null {
  const mb = /need to copy (\d+) MB/.exec(output)?.[1];
  return mb === undefined ? null : Number(mb);
}

/**
 * What went wrong: pg_rewind's "error:"/"fatal:" line (else its last line), plus the FATAL of the
 * single-user server it runs for crash recovery, which says why that failed.
 */
export function rewindError(output: string): string {
  const lines = output.trim().split('\n');
  const line = lines.find((l) => /^pg_rewind: (error|fatal): /.test(l)) ?? lines.at(-1) ?? 'unknown error';
  const server = lines.find((l) => /\bFATAL: /.test(l))?.replace(/^.*\bFATAL:\s+/, '');
  return `${line.replace(/^pg_rewind: (error|fatal): /, '')}${server ? ` (postgres: ${server})` : ''}`;
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
  control: { timeline: number; walSegmentBytes: number },
): Promise<LostWal> {
  const { timeline } = control;
  const wal = join(dataDir, 'pg_wal');
  const first = walFileName(timeline, from, control.walSegmentBytes);
  if (!existsSync(join(wal, first))) {
    // pg_waldump would wait 5 s for a missing file, then fail. No later segment of that timeline
    // either: the node never wrote past `from`. Later ones only: `from` was recycled, end unknown.
    const later = readdirSync(wal).some(
      (f) => /^[0-9A-F]{24}$/.test(f) && f.startsWith(first.slice(0, 8)) && f > first,
    );
    return { from, to: later ? null : from, commits: [] };
  }
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
  const end =
    /(?:invalid record length|invalid resource manager ID \d+|incorrect prev-link \S+|record length \d+) at ([0-9A-F]+\/[0-9A-F]+)/.exec(
      r.stderr,
    )?.[1];
  return { from, to: end ?? null, commits };
}

/**
 * listCommitsAfter on a data directory whose control file says which timeline and segment size to
 * read; null when its control file or its WAL cannot be read.
 */
export async function readCommitsAfter(
  env: InstanceEnv,
  dataDir: string,
  from: string,
): Promise<LostWal | null> {
  try {
    return await listCommitsAfter(env, dataDir, from, await readControlData(env, dataDir));
  } catch {
    return null;
  }
}
