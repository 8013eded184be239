import { PgreplError } from '../errors.js';
import { controlOf } from '../cluster/actions/control-of.js';
import { sqlOn } from '../cluster/context/node-sql.js';
import type { EtcdClient } from '../dcs/etcd-client.js';
import { haStore } from '../dcs/ha-store.js';
import type { Agent, AgentState } from './agent-loop.js';
import { leadsAsPrimary } from './agent-state.js';
import type { NodeOperationResult } from '../ha/node-operation.js';

export interface AgentOperations {
  restart(): Promise<NodeOperationResult>;
  reload(): Promise<NodeOperationResult>;
  stop(mode: 'fast' | 'immediate'): Promise<NodeOperationResult>;
  start(): Promise<NodeOperationResult>;
  /** `remove`: stops the node for good and ends the agent (the operator then takes it out of the spec). */
  leave(): Promise<NodeOperationResult>;
}

/**
 * The node operations an operator asks of its agent (`pgrepl restart|reload|stop|start NODE` while
 * agents run): each acts on the agent's own node only, as an operation of the agent so that its
 * loop does not undo it, and returns once the loop sees the node as it should be.
 */
export function agentOperations(d: { readonly etcd: EtcdClient; readonly agent: Agent }): AgentOperations {
  const { etcd, agent } = d;
  // The agent's node as its spec has it now (the spec may be re-read while it runs).
  const { ctx, node } = agent.context;
  const control = () => controlOf(agent.context.ctx, agent.context.node);
  const store = haStore(etcd, ctx.spec.cluster);
  const isLeader = () => agent.current.ha?.view.leader?.node === node.name;
  const result = (began: number, pidBefore: number | null, extra: Partial<NodeOperationResult> = {}) => ({
    node: node.name,
    role: agent.current.self?.local.kind ?? 'unknown',
    pidBefore,
    pidAfter: control().state().pid,
    ms: ctx.clock.now() - began,
    ...extra,
  });

  /** Waits until the loop, after `since`, observed the node as `done` says; tells the last reason otherwise. */
  const settled = async (since: number, done: (s: AgentState) => boolean, what: string) => {
    const deadline = ctx.clock.now() + ctx.timeouts.streamingMs;
    for (;;) {
      const s = agent.current;
      if (s.lastLoopAt > since && done(s)) return;
      if (ctx.clock.now() > deadline)
        throw new PgreplError(
          'E_TIMEOUT',
          `${node.name} did not ${what} within ${ctx.timeouts.streamingMs / 1000} s; its agent says: ${s.decision?.reason ?? 'nothing yet'}`,
        );
      await ctx.clock.sleep(20);
    }
  };
  const streamingOrLeading = (s: AgentState) =>
    (s.self?.local.kind === 'replica' && s.self.local.streaming) || leadsAsPrimary(s);

  return {
    async restart() {
      const began = ctx.clock.now();
      const pidBefore = control().state().pid;
      if (pidBefore === null)
        throw new PgreplError(
          'E_NOT_RUNNING',
          `${node.name} does not run; \`pgrepl start ${node.name}\` starts it`,
        );
      await agent.takeSpec();
      await agent.operate('restart', async () => {
        // The leader's server comes back as primary under a PID not known yet: fenced all along.
        if (isLeader()) agent.armBeforePrimary(null);
        await control().restart();
      });
      await settled(began, streamingOrLeading, 'stream again (or lead) after its restart');
      return result(began, pidBefore);
    },

    async reload() {
      const began = ctx.clock.now();
      const pidBefore = control().state().pid;
      if (pidBefore === null)
        throw new PgreplError('E_NOT_RUNNING', `${node.name} does not run; nothing to reload`);
      await control().reload();
      const pending = await sqlOn(agent.context.ctx, agent.context.node, (q) =>
        q.query<{ name: string }>('SELECT name FROM pg_settings WHERE pending_restart ORDER BY name'),
      );
      return result(began, pidBefore, { pendingRestart: pending.map((r) => r.name) });
    },

    async stop(mode) {
      const began = ctx.clock.now();
      const pidBefore = control().state().pid;
      // Stopping the leader would be a failover nobody asked for by name.
      if (isLeader())
        throw new PgreplError(
          'E_IS_PRIMARY',
          `${node.name} is the primary: \`pgrepl switchover\` first (or \`pgrepl down\` for the whole cluster); nothing was changed`,
        );
      await agent.operate('stop', async () => {
        // Recorded first: an agent restarted meanwhile must not start it again.
        await store.holdStopped(node.name, true);
        await control().stop(mode);
      });
      return result(began, pidBefore, { role: 'stopped' });
    },

    async leave() {
      const began = ctx.clock.now();
      const pidBefore = control().state().pid;
      if (isLeader())
        throw new PgreplError(
          'E_IS_PRIMARY',
          `${node.name} is the primary: \`pgrepl switchover\` first, then remove it; nothing was changed`,
        );
      await agent.operate('remove', async () => {
        await store.holdStopped(node.name, true);
        await control().stop('fast');
      });
      agent.retire(
        `${node.name} is being removed from the cluster: its server is stopped and the agent ends`,
      );
      return result(began, pidBefore, { role: 'stopped' });
    },

    async start() {
      const began = ctx.clock.now();
      const pidBefore = control().state().pid;
      await agent.operate('start', () => store.holdStopped(node.name, false));
      await settled(began, streamingOrLeading, 'start and stream');
      return result(began, pidBefore);
    },
  };
}
