import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { childRecordsDir } from '../context/child-records.js';
import { createdDirsPath, readState, statePath } from '../store/cluster-state.js';
import { statePaths } from '../context/cluster-context.js';
import { historyPath, journalPath } from '../store/file-store.js';
import { controlOf } from '../actions/control-of.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { stopCluster } from './stop-cluster.js';

export interface DestroyResult {
  stopped: string[];
  removed: string[];
  /** Data directories of the spec that pgrepl did not create, left in place. */
  kept: string[];
  /** Old data directories re-clones moved aside, left for `pgrepl clean --yes`. */
  movedAside: string[];
}

/**
 * Stops the nodes and deletes only what pgrepl created: the data directories recorded in its state
 * and the state dir itself. A directory pgrepl did not create is never deleted.
 */
export async function destroyCluster(ctx: ClusterContext): Promise<DestroyResult> {
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
  ]) {
    if (!existsSync(path)) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(path);
  }
  for (const dir of [join(ctx.spec.stateDir, 'data'), ctx.spec.stateDir]) removeIfEmpty(dir);
  const movedAside = ctx.spec.nodes
    .filter((n) => ctx.localNodes.has(n.name))
    .flatMap((n) => controlOf(ctx, n).movedAside());
  return { stopped, removed, kept, movedAside };
}

function removeIfEmpty(dir: string): void {
  if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
}
