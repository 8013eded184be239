import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { childRecordsDir } from '../context/child-records.js';
import { createdDirsPath, readState, statePath } from '../store/cluster-state.js';
import { statePaths } from '../context/cluster-context.js';
import { historyPath, journalPath } from '../store/file-store.js';
import { controlOf } from '../actions/control-of.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { stopCluster } from './stop-cluster.js';
import { backupSocketDir, backupStateDir } from '../../cluster-spec/backup-paths.js';

export interface DestroyResult {
  stopped: string[];
  removed: string[];
  /** Data directories of the spec that pgrepl did not create, left in place. */
  kept: string[];
  /** Old data directories re-clones moved aside, left for `pgrepl clean --yes`. */
  movedAside: string[];
  /** The repository holding this cluster's backups, kept unless asked (`--with-backups`). */
  keptBackups: string | null;
}

/**
 * Stops the nodes and deletes only what pgrepl created: the data directories recorded in its state
 * and the state dir itself. A directory pgrepl did not create is never deleted.
 */
export async function destroyCluster(
  ctx: ClusterContext,
  o: { readonly withBackups: boolean } = { withBackups: false },
): Promise<DestroyResult> {
  const { stopped } = await stopCluster(ctx, 'immediate');
  const created = readState(ctx.spec.stateDir, ctx.spec.cluster).createdDirs;
  const removed: string[] = [];
  for (const dir of created) {
    if (!existsSync(dir)) continue;
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  const kept = ctx.spec.nodes
    .filter((n) => ctx.localNodes.has(n.name))
    .map((n) => n.dataDir)
    .filter((d) => existsSync(d) && !created.includes(d));
  // Only pgrepl's own entries of the state dir go; the dir itself only once it is empty, since a
  // user may have pointed stateDir at a directory that holds other things too.
  const paths = statePaths(ctx.spec);
  for (const path of [
    paths.secretsDir,
    paths.logsDir,
    statePath(ctx.spec.stateDir),
    createdDirsPath(ctx.spec.stateDir),
    journalPath(ctx.spec.stateDir),
    historyPath(ctx.spec.stateDir),
    childRecordsDir(ctx.spec.stateDir),
    // The agents' and the local etcd's files (`up --ha`), stopped by then.
    join(ctx.spec.stateDir, 'ha'),
    // pgBackRest's configuration, logs and locks, and the nodes' sockets; the repository is below.
    ...['conf', 'log', 'lock'].map((d) => join(backupStateDir(ctx.spec.stateDir), d)),
    backupSocketDir(ctx.spec.stateDir),
    // Only this cluster's stanza: a repository given in the spec may hold other clusters' too.
    ...(o.withBackups && ctx.spec.backup
      ? ['archive', 'backup'].map((d) => join(ctx.spec.backup!.repoPath, d, ctx.spec.cluster))
      : []),
  ]) {
    if (!existsSync(path)) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(path);
  }
  const repo = ctx.spec.backup?.repoPath;
  if (repo && o.withBackups) for (const dir of ['archive', 'backup', '']) removeIfEmpty(join(repo, dir));
  for (const dir of [join(ctx.spec.stateDir, 'data'), backupStateDir(ctx.spec.stateDir), ctx.spec.stateDir])
    removeIfEmpty(dir);
  const movedAside = ctx.spec.nodes
    .filter((n) => ctx.localNodes.has(n.name))
    .flatMap((n) => controlOf(ctx, n).movedAside());
  return { stopped, removed, kept, movedAside, keptBackups: repo && existsSync(repo) ? repo : null };
}

function removeIfEmpty(dir: string): void {
  if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
}
