import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { removeNode } from '../cluster/operations/remove-node.js';
import { setMode } from '../cluster/operations/run-set-mode.js';
import { PgreplError } from '../errors.js';
import type { NodeOperationResult } from '../ha/node-operation.js';
import { askAgent } from './agent-client.js';
import { failoverThroughAgents, switchoverThroughAgents } from './agent-failover.js';
import {
  assertAgentsTakeSpec,
  removeThroughAgents,
  restartThroughAgents,
  waitModeTaken,
} from './agent-requests.js';
import type { HaTarget } from './ha-target.js';
import type { CommandGuards, Reloaded, Topology } from './topology.js';
import { monotonicNow } from '../monotonic-now.js';

/**
 * The agents' way: each node is acted on by its own agent (its API), and the cluster's changes are
 * requests in the HA store that the agents carry out; this command waits until they did.
 */
export function agentsTopology(ctx: ClusterContext, t: HaTarget, g: CommandGuards): Topology {
  const { spec } = ctx;
  const via = 'agents' as const;
  const ask = (node: string, path: string, body?: object) =>
    askAgent<NodeOperationResult>(spec, t, node, path, body);
  return {
    via,
    promote: async (r) => {
      if (r.oldPrimaryIsDown)
        throw new PgreplError(
          'E_USAGE',
          '--i-know-the-old-primary-is-down is for promotions without agents: with agents, the old leader is fenced by its own lease',
        );
      return { via, ...(await failoverThroughAgents(spec, t, r.target, r.force)) };
    },
    switchover: async (to) => ({ via, ...(await switchoverThroughAgents(spec, t, to)) }),
    restart: async (o) => ({
      via,
      ...(o.only === undefined
        ? await restartThroughAgents(spec, t, { switchover: o.switchover })
        : { restarted: [await ask(o.only, '/restart')], switchover: null }),
    }),
    // Each running node (or only `only`) re-reads its files through its own agent.
    reload: async (only) => {
      const s = await t.store.read();
      const running = [...s.members.values()]
        .filter((m) => m.role === 'primary' || m.role === 'replica')
        .map((m) => m.node);
      const r: Reloaded[] = [];
      for (const n of only === undefined ? running : [only]) {
        const a = await ask(n, '/reload');
        r.push({ node: a.node, pendingRestart: a.pendingRestart ?? [] });
      }
      return r;
    },
    stop: async (name, mode) => ({ via, ...(await ask(name, '/stop', { mode })) }),
    // Its agent leaves first; the other agents then render their nodes from the edited spec.
    remove: async (name, deleteData) => ({
      via,
      ...(await removeThroughAgents(spec, t, name, () =>
        g.exclusive(
          'remove',
          async () => (await removeNode(ctx, name, { deleteData, renderOthers: false })).result,
        ),
      )),
    }),
    startNode: (name) => ask(name, '/start'),
    // The agents take the edited spec themselves: the leader's records a wider synchronous set
    // before its server waits on it, a narrower one once that is safe.
    setMode: async (r) => {
      await assertAgentsTakeSpec(ctx, t);
      const began = monotonicNow();
      const taken = await g.exclusive('set-mode', async () => waitModeTaken(await setMode(ctx, r), t));
      return { via, ...taken, ms: monotonicNow() - began };
    },
  };
}
