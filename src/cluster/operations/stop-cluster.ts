import { readDataDir, stopInstance } from '../../postgres/instance-control.js';
import type { NodeSpec } from '../../spec/cluster-spec.js';
import type { ClusterContext } from '../context/cluster-context.js';

/**
 * Stops every running node, the primary first: a fast shutdown streams its shutdown checkpoint to
 * the connected replicas, so they stop with everything the primary wrote. Returns the nodes stopped.
 */
export async function stopCluster(
  ctx: ClusterContext,
  mode: 'fast' | 'immediate' = 'fast',
): Promise<string[]> {
  const running = ctx.spec.nodes.filter((n) => readDataDir(n.dataDir).pid !== null);
  const isPrimary = (n: NodeSpec) => !readDataDir(n.dataDir).standbySignal;
  const primaries = running.filter(isPrimary);
  const replicas = running.filter((n) => !isPrimary(n));
  for (const n of primaries) await stopInstance(ctx.env, { dataDir: n.dataDir, mode });
  await Promise.all(replicas.map((n) => stopInstance(ctx.env, { dataDir: n.dataDir, mode })));
  return [...primaries, ...replicas].map((n) => n.name);
}
