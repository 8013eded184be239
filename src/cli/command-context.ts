import { buildContext } from '../cluster/context/cluster-context.js';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { withClusterLock } from '../cluster/store/cluster-lock.js';
import { childRecordsDir, reapOrphans } from '../cluster/context/child-records.js';
import { assertNoInterruptedOperation } from '../cluster/store/journal.js';
import { removeLeftoverInitdbSecrets } from '../postgres/instance-control.js';
import { processRunner } from '../postgres/command-runner.js';
import { loadSpec } from '../spec/load-spec.js';
import { asChanging, interruptSignal } from './process-signals.js';

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
  return buildContext(spec, { runner: processRunner, env: process.env, interrupt: interruptSignal });
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
  return withClusterLock(ctx.spec.stateDir, command, () =>
    asChanging(async () => {
      // A pgrepl killed by SIGKILL could not stop its children: they must be gone before anything
      // is retried (a clone would otherwise be restarted into the path an orphan still writes).
      for (const left of await reapOrphans(childRecordsDir(ctx.spec.stateDir)))
        process.stderr.write(`• stopped ${left}, which was still running\n`);
      removeLeftoverInitdbSecrets(ctx.paths.secretsDir);
      if (!opts.allowInterrupted) assertNoInterruptedOperation(ctx.spec.stateDir);
      return fn();
    }),
  );
}
