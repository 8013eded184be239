import type { NodeSpec } from '../../spec/cluster-spec.js';
import { controlOf } from '../actions/control-of.js';
import { nodeOf } from '../actions/node-actions.js';
import type { ClusterContext } from '../context/cluster-context.js';

export interface StopResult {
  /** The nodes stopped, in order. */
  readonly stopped: string[];
  /** Nodes on other hosts, which this machine cannot stop. */
  readonly elsewhere: string[];
}

/**
 * Stops every running node of this machine, the primary first: a fast shutdown streams its
 * shutdown checkpoint to the connected replicas, so they stop with everything the primary wrote.
 */
export async function stopCluster(
  ctx: ClusterContext,
  mode: 'fast' | 'immediate' = 'fast',
): Promise<StopResult> {
  const here = ctx.spec.nodes.filter((n) => ctx.localNodes.has(n.name));
  const running = here.filter((n) => controlOf(ctx, n).state().pid !== null);
  const isPrimary = (n: NodeSpec) => !controlOf(ctx, n).state().standbySignal;
  const primaries = running.filter(isPrimary);
  const replicas = running.filter((n) => !isPrimary(n));
  for (const n of primaries) await controlOf(ctx, n).stop(mode);
  await Promise.all(replicas.map((n) => controlOf(ctx, n).stop(mode)));
  return {
    stopped: [...primaries, ...replicas].map((n) => n.name),
    elsewhere: ctx.spec.nodes.filter((n) => !ctx.localNodes.has(n.name)).map((n) => n.name),
  };
}

export interface StopNodeResult {
  readonly node: string;
  /** It ran before; false: there was nothing to stop. */
  readonly stopped: boolean;
  /** It was the primary: writes are impossible until it runs again or a replica is promoted. */
  readonly wasPrimary: boolean;
}

/** `stop NODE`: a fast shutdown of one node of this machine (its data is kept). */
export async function stopOneNode(
  ctx: ClusterContext,
  name: string,
  mode: 'fast' | 'immediate' = 'fast',
): Promise<StopNodeResult> {
  const control = controlOf(ctx, nodeOf(ctx, name));
  const before = control.state();
  if (before.pid === null) return { node: name, stopped: false, wasPrimary: false };
  await control.stop(mode);
  return { node: name, stopped: true, wasPrimary: !before.standbySignal };
}
