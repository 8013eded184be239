import { checkResult } from './command-runner.js';
import type { CommandRunner } from './command-runner.js';

/**
 * Flushes the file system that holds `dir` to disk: syncfs(2), through coreutils' `sync --file-system`.
 * initdb, pg_basebackup and pg_rewind fsync every file of the data directory one by one (a thousand
 * even in an empty cluster, all of them after a rewind that changed a few); pgrepl runs them with
 * --no-sync and then flushes once, which writes the same data in less time. Their docs warn that
 * --no-sync leaves a directory that an OS crash can corrupt: this call closes that window before
 * pgrepl records the step as done or starts a server on the directory.
 */
export async function syncFileSystem(runner: CommandRunner, dir: string): Promise<void> {
  const r = await runner.run('sync', ['--file-system', dir], { timeoutMs: 10 * 60_000 });
  checkResult(`flushing the file system of ${dir} to disk`, r);
}
