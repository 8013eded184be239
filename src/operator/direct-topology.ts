import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { removeNode } from '../cluster/operations/remove-node.js';
import { reloadNodes, restartNodes } from '../cluster/operations/restart-nodes.js';
import { runPromote } from '../cluster/operations/run-promote.js';
import { setMode } from '../cluster/operations/run-set-mode.js';
import { runSwitchover } from '../cluster/operations/run-switchover.js';
import { applyUp, planCluster } from '../cluster/operations/run-up.js';
import { stopOneNode } from '../cluster/operations/stop-cluster.js';
import type { CommandGuards, Topology } from './topology.js';

/** The direct way: journaled operations, each under the lock, on the nodes this machine can act on. */
export function directTopology(ctx: ClusterContext, g: CommandGuards): Topology {
  const via = 'direct' as const;
  return {
    via,
    promote: async (r) => ({
      via,
      ...(await g.changing('promote', () =>
        runPromote(ctx, {
          target: r.target,
          auto: r.target === undefined,
          force: r.force,
          oldPrimaryIsDown: r.oldPrimaryIsDown,
        }),
      )),
    }),
    switchover: async (to) => ({ via, ...(await g.changing('switchover', () => runSwitchover(ctx, to))) }),
    restart: async (o) => ({
      via,
      ...(await g.changing('restart', () => restartNodes(ctx, { only: o.only, switchover: o.switchover }))),
    }),
    reload: (only) => g.changing('reload', () => reloadNodes(ctx, only)),
    stop: async (name, mode) => ({ via, ...(await g.changing('stop', () => stopOneNode(ctx, name, mode))) }),
    remove: async (name, deleteData) => ({
      via,
      removal: await g.changing(
        'remove',
        async () => (await removeNode(ctx, name, { deleteData, renderOthers: true })).result,
      ),
    }),
    startNode: () => Promise.resolve(null),
    // One lock for the edit and the apply: no other command sees the spec and the servers disagree.
    setMode: async (r) => ({
      via,
      ...(await g.changing('set-mode', async () => {
        const edited = await setMode(ctx, r);
        return { edited, result: await applyUp(edited, await planCluster(edited, { create: false })) };
      })),
    }),
  };
}
