import { PgreplError } from '../../errors.js';
import { controlOf } from '../actions/control-of.js';
import { waitStreaming } from '../actions/node-actions.js';
import { nodeOf } from '../context/node-sql.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { topologyGuard } from '../decide/topology-guard.js';
import { observeCluster } from '../observe/observe-cluster.js';
import { roleOf, runningReplicas } from '../observe/observation.js';
import { runSwitchover } from './run-switchover.js';

export interface RestartResult {
  /** The nodes restarted in place, in order. */
  readonly restarted: string[];
  /** With `switchover`: the replica that took over, so that the old primary restarted as its replica. */
  readonly switchedTo: string | null;
}

/**
 * `restart [NODE]`: restarts the running nodes of this machine, replicas first (each streams again
 * before the next goes), then the primary: in place (writes stop for the restart) or, with
 * `switchover`, through a switchover to the best replica, which restarts the old primary as a
 * replica with no write lost. Run exclusively.
 */
export async function restartNodes(
  ctx: ClusterContext,
  o: { only?: string | undefined; switchover: boolean },
): Promise<RestartResult> {
  const obs = await observeCluster(ctx);
  const guard = topologyGuard(obs, { actsOn: o.only === undefined ? 'all' : [o.only] });
  if (guard) throw new PgreplError(guard.code, `${guard.reason}; nothing was changed`);
  const primary = obs.nodes.find((n) => roleOf(n) === 'primary')?.node;
  const replicas = runningReplicas(obs).map((n) => nodeOf(ctx, n));
  const only = o.only === undefined ? undefined : nodeOf(ctx, o.only);
  if (only && only.name !== primary?.name && !replicas.includes(only))
    throw new PgreplError(
      'E_NOT_RUNNING',
      `${only.name} does not run; \`pgrepl start ${only.name}\` starts it`,
    );
  const say = (node: string, message: string) => ctx.events.emit({ event: 'action', node, message });
  const restarted: string[] = [];
  for (const r of replicas.filter((n) => only === undefined || n === only)) {
    say(r.name, `restarting ${r.name}`);
    await controlOf(ctx, r).restart();
    if (primary) await waitStreaming(ctx, r, primary);
    restarted.push(r.name);
  }
  let switchedTo: string | null = null;
  if (primary && (only === undefined || only.name === primary.name)) {
    if (o.switchover) {
      say(primary.name, `switching over from ${primary.name}, which restarts as a replica`);
      switchedTo = (await runSwitchover(ctx, undefined)).newPrimary;
    } else {
      say(primary.name, `restarting ${primary.name}, the primary: no writes until it is back`);
      await controlOf(ctx, primary).restart();
      restarted.push(primary.name);
      await Promise.all(replicas.map((r) => waitStreaming(ctx, r, primary)));
    }
  }
  return { restarted, switchedTo };
}

/**
 * `reload [NODE]`: makes the running nodes of this machine (or NODE) re-read their configuration;
 * returns, per node reloaded, the settings that still wait for a restart.
 */
export async function reloadNodes(
  ctx: ClusterContext,
  only: string | undefined,
): Promise<{ node: string; pendingRestart: readonly string[] }[]> {
  const targets =
    only === undefined ? ctx.spec.nodes.filter((n) => ctx.localNodes.has(n.name)) : [nodeOf(ctx, only)];
  const reloaded: string[] = [];
  for (const n of targets) {
    const control = controlOf(ctx, n);
    if (control.state().pid === null) {
      if (only !== undefined)
        throw new PgreplError('E_NOT_RUNNING', `${n.name} does not run; nothing to reload`);
      continue;
    }
    await control.reload();
    reloaded.push(n.name);
  }
  const after = await observeCluster(ctx);
  return reloaded.map((node) => {
    const server = after.nodes.find((o) => o.node.name === node)?.server;
    return { node, pendingRestart: server?.ok ? server.pendingRestart : [] };
  });
}
