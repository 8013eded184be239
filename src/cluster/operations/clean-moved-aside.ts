import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { controlOf } from '../actions/control-of.js';
import { nodeOf } from '../context/node-sql.js';
import type { ClusterContext } from '../context/cluster-context.js';

export interface MovedAside {
  readonly node: string;
  readonly dir: string;
  readonly bytes: number;
}

/** The old data directories re-clones moved aside on this machine, with their sizes. */
export function listMovedAside(ctx: ClusterContext): MovedAside[] {
  return ctx.spec.nodes
    .filter((n) => ctx.localNodes.has(n.name))
    .flatMap((n) =>
      controlOf(ctx, n)
        .movedAside()
        .map((dir) => ({ node: n.name, dir, bytes: sizeOf(dir) })),
    );
}

/** `clean --yes`: deletes them; run exclusively. */
export function removeMovedAside(ctx: ClusterContext, found: readonly MovedAside[]): void {
  for (const f of found) controlOf(ctx, nodeOf(ctx, f.node)).removeMovedAside(f.dir);
}

/** Bytes under `path`, links not followed. */
function sizeOf(path: string): number {
  const st = lstatSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((sum, f) => sum + sizeOf(join(path, f)), 0);
}
