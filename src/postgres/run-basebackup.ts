import { checkResult } from './command-runner.js';
import type { InstanceEnv } from './instance-control.js';
import { syncFileSystem } from './sync-file-system.js';
import { toolPath } from './find-binaries.js';

/** Where a clone is: what pg_basebackup is waiting on, and how much it copied. */
export type ClonePhase = 'connecting' | 'checkpoint' | 'copying' | 'finishing' | 'done';

export interface CloneProgress {
  phase: ClonePhase;
  doneKb: number;
  totalKb: number;
}

export interface BasebackupOptions {
  /** An empty directory that receives the copy. */
  targetDir: string;
  /** libpq conninfo without a password (it comes from the passfile named in it). */
  conninfo: string;
  slot: string;
  onProgress?: (p: CloneProgress) => void;
  onSpawn?: (pid: number) => void;
  signal?: AbortSignal;
}

/**
 * Clones a primary with `pg_basebackup -X stream -R -S <slot> --checkpoint=fast`: streaming WAL
 * keeps the copy consistent, -R writes standby.signal, -S uses the replica's own slot, and a fast
 * checkpoint saves the wait for the primary's next scheduled one (minutes on a default primary).
 * The copy is flushed with one syncfs rather than pg_basebackup's fsync of each file (syncFileSystem).
 */
export async function runBasebackup(env: InstanceEnv, o: BasebackupOptions): Promise<void> {
  const progress: CloneProgress = { phase: 'connecting', doneKb: 0, totalKb: 0 };
  const emit = (patch: Partial<CloneProgress>) => {
    Object.assign(progress, patch);
    o.onProgress?.({ ...progress });
  };
  emit({});
  const r = await env.runner.run(
    toolPath(env.bins, 'pg_basebackup'),
    [
      '-D',
      o.targetDir,
      '-d',
      o.conninfo,
      '-X',
      'stream',
      '-R',
      '-S',
      o.slot,
      '--checkpoint=fast',
      '--progress',
      '--verbose',
      '--no-password',
      '--no-sync',
    ],
    {
      runAs: env.runAs,
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.onSpawn ? { onSpawn: o.onSpawn } : {}),
      onStderrLine: (line) => {
        const phase = phaseOf(line);
        if (phase) emit({ phase });
        const m = /(\d+)\/(\d+) kB/.exec(line);
        if (m) emit({ phase: 'copying', doneKb: Number(m[1]), totalKb: Number(m[2]) });
      },
    },
  );
  checkResult(`pg_basebackup into ${o.targetDir}`, r);
  await syncFileSystem(env.runner, o.targetDir);
  emit({ phase: 'done', doneKb: progress.totalKb });
}

/** Maps pg_basebackup --verbose lines to phases. */
export function phaseOf(line: string): ClonePhase | undefined {
  if (line.includes('waiting for checkpoint')) return 'checkpoint';
  if (line.includes('checkpoint completed') || line.includes('write-ahead log start point')) return 'copying';
  if (line.includes('write-ahead log end point') || line.includes('waiting for background process'))
    return 'finishing';
  return undefined;
}
