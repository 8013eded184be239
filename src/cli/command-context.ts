import { buildContext } from '../cluster/context/cluster-context.js';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { exclusively } from '../cluster/operations/exclusive.js';
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
 * Runs a command that changes the cluster: exclusively (under the lock, and only when no earlier
 * operation was left half-done unless `allowInterrupted`), with SIGINT/SIGTERM waiting for a safe point.
 */
export function changing<T>(
  ctx: ClusterContext,
  command: string,
  fn: () => Promise<T>,
  opts: { allowInterrupted?: boolean } = {},
): Promise<T> {
  return exclusively(ctx, command, () => asChanging(fn), {
    ...opts,
    say: (m) => process.stderr.write(`• ${m}\n`),
  });
}
