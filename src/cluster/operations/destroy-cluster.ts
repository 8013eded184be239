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
import { repoLabel } from '../../backup/render-pgbackrest-conf.js';
import { deleteBucketStanza } from '../actions/backup-actions.js';

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
  const repo = ctx.spec.backup?.repo;
  // A bucket's stanza is deleted by pgBackRest itself, with the node's conf, before that conf goes.
  if (repo?.kind === 's3' && o.withBackups) removed.push(await deleteBucketStanza(ctx));
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
    ...['conf', 'log', 'lock', 'secret'].map((d) => join(backupStateDir(ctx.spec.stateDir), d)),
    backupSocketDir(ctx.spec.stateDir),
    // Only this cluster's stanza: a repository given in the spec may hold other clusters' too.
    ...(o.withBackups && repo?.kind === 'posix'
      ? ['archive', 'backup'].map((d) => join(repo.path, d, ctx.spec.cluster))
      : []),
  ]) {
    if (!existsSync(path)) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(path);
  }
  if (repo?.kind === 'posix' && o.withBackups)
    for (const dir of ['archive', 'backup', '']) removeIfEmpty(join(repo.path, dir));
  for (const dir of [join(ctx.spec.stateDir, 'data'), backupStateDir(ctx.spec.stateDir), ctx.spec.stateDir])
    removeIfEmpty(dir);
  const movedAside = ctx.spec.nodes
    .filter((n) => ctx.localNodes.has(n.name))
    .flatMap((n) => controlOf(ctx, n).movedAside());
  const keptBackups =
    repo === undefined || o.withBackups
      ? null
      : repo.kind === 's3'
        ? repoLabel(repo)
        : existsSync(repo.path)
          ? repo.path
          : null;
  return { stopped, removed, kept, movedAside, keptBackups };
}

function removeIfEmpty(dir: string): void {
  if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
}
