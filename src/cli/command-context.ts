import { buildContext } from '../cluster/cluster-context.js';
import type { ClusterContext } from '../cluster/cluster-context.js';
import { processRunner } from '../postgres/command-runner.js';
import { loadSpec } from '../spec/load-spec.js';

/** Global options every command takes. */
export interface GlobalOptions {
  config?: string;
}

/** Loads the spec and resolves the context at the edge, from this process's cwd and env. */
export async function commandContext(g: GlobalOptions): Promise<ClusterContext> {
  const spec = loadSpec({ cwd: process.cwd(), ...(g.config === undefined ? {} : { file: g.config }) });
  return buildContext(spec, { runner: processRunner, env: process.env });
}
