import { buildContext } from '../cluster/cluster-context.js';
import type { ClusterContext } from '../cluster/cluster-context.js';
import { withClusterLock } from '../cluster/cluster-lock.js';
import { assertNoInterruptedOperation } from '../cluster/journal.js';
import { processRunner } from '../postgres/command-runner.js';
import { loadSpec } from '../spec/load-spec.js';

/** Global options every command takes. */
export interface GlobalOptions {
  config?: string;
}

/** Loads the spec and resolves the context at the edge, from this process's cwd and env. */
export async function commandContext(g: GlobalOptions): Promise<ClusterContext> {
  const spec = await loadSpec({
    cwd: process.cwd(),
    env: process.env,
    ...(g.config === undefined ? {} : { file: g.config }),
  });
  return buildContext(spec, { runner: processRunner, env: process.env });
}

/**
 * Runs a command that changes the cluster: under the cluster lock, and (unless `allowInterrupted`)
 * only when no earlier operation was left half-done.
 */
export async function changing<T>(
  ctx: ClusterContext,
  command: string,
  fn: () => Promise<T>,
  opts: { allowInterrupted?: boolean } = {},
): Promise<T> {
  return withClusterLock(ctx.spec.stateDir, command, async () => {
    if (!opts.allowInterrupted) assertNoInterruptedOperation(ctx.spec.stateDir);
    return fn();
  });
}
