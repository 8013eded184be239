import { controlOf } from '../actions/control-of.js';
import { nodeOf } from '../context/node-sql.js';
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
  // Each node's directory read once: whether it runs, and whether it is a standby.
  const running = ctx.spec.nodes
    .filter((n) => ctx.localNodes.has(n.name))
    .map((n) => {
      const control = controlOf(ctx, n);
      return { name: n.name, control, dir: control.state() };
    })
    .filter((r) => r.dir.pid !== null);
  const primaries = running.filter((r) => !r.dir.standbySignal);
  const replicas = running.filter((r) => r.dir.standbySignal);
  for (const r of primaries) await r.control.stop(mode);
  await Promise.all(replicas.map((r) => r.control.stop(mode)));
  return {
    stopped: [...primaries, ...replicas].map((r) => r.name),
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
