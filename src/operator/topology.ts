import type { ClusterContext } from '../cluster/context/cluster-context.js';
import type { SetModeRequest } from '../cluster/decide/decide-set-mode.js';
import type { PromoteResult } from '../cluster/operations/run-promote.js';
import type { SwitchoverResult } from '../cluster/operations/run-switchover.js';
import type { RestartResult } from '../cluster/operations/restart-nodes.js';
import type { StopNodeResult } from '../cluster/operations/stop-cluster.js';
import type { RemoveResult } from '../cluster/operations/remove-node.js';
import type { UpResult } from '../cluster/operations/run-up.js';
import type { NodeOperationResult } from '../ha/node-operation.js';
import type { AgentFailover, AgentSwitchover } from './agent-failover.js';
import type { AgentRemoval } from './agent-requests.js';
import { agentsTopology } from './agents-topology.js';
import { directTopology } from './direct-topology.js';
import { agentsRunning } from './ha-target.js';

/** What a command returns, by the way it went: each way has facts of its own to tell. */
export type Via<Agents, Direct> =
  ({ readonly via: 'agents' } & Agents) | ({ readonly via: 'direct' } & Direct);

export interface PromoteRequest {
  /** The node to promote; undefined: the best candidate (`--auto`). */
  readonly target: string | undefined;
  readonly force: boolean;
  /** Go on when the forced stop of the old primary fails (direct only). */
  readonly oldPrimaryIsDown: boolean;
}

export interface Reloaded {
  readonly node: string;
  readonly pendingRestart: readonly string[];
}

/**
 * How an operator command reaches the cluster: directly (journaled operations on the nodes this
 * machine can act on) or through the agents (requests in the HA store and the agents' API). Which
 * one is chosen once, where a command starts (topologyFor); who may be promoted is decided by the
 * same function in `decide/` either way. Each method is one command's work.
 */
export interface Topology {
  readonly via: 'direct' | 'agents';
  promote(r: PromoteRequest): Promise<Via<AgentFailover, PromoteResult>>;
  switchover(to: string | undefined): Promise<Via<AgentSwitchover, SwitchoverResult>>;
  /** The replicas first, then the primary in place or (`switchover`) by a switchover; or `only` one node. */
  restart(o: {
    readonly only: string | undefined;
    readonly switchover: boolean;
  }): Promise<
    Via<
      { readonly restarted: NodeOperationResult[]; readonly switchover: AgentSwitchover | null },
      RestartResult
    >
  >;
  reload(only: string | undefined): Promise<Reloaded[]>;
  stop(name: string, mode: 'fast' | 'immediate'): Promise<Via<NodeOperationResult, StopNodeResult>>;
  remove(
    name: string,
    deleteData: boolean,
  ): Promise<Via<AgentRemoval<RemoveResult>, { removal: RemoveResult }>>;
  /** `start NODE` of a node an agent runs: its agent starts it. Direct: null, `up`'s plan starts it. */
  startNode(name: string): Promise<NodeOperationResult | null>;
  setMode(
    r: SetModeRequest,
  ): Promise<
    Via<
      { readonly leader: string; readonly synchronousStandbyNames: string; readonly ms: number },
      { readonly edited: ClusterContext; readonly result: UpResult }
    >
  >;
}

/** How the direct way runs a command that changes the cluster, and how a lock alone is taken (the CLI's). */
export interface CommandGuards {
  /** Exclusively, refused while agents run, with signals waiting for a safe point. */
  readonly changing: <T>(command: string, fn: () => Promise<T>) => Promise<T>;
  /** Exclusively, with signals waiting for a safe point (the agents act; this command only edits). */
  readonly exclusive: <T>(command: string, fn: () => Promise<T>) => Promise<T>;
}

/** The agents' way while agents run the cluster (paused or not), else the direct way. */
export async function topologyFor(ctx: ClusterContext, g: CommandGuards): Promise<Topology> {
  const t = await agentsRunning(ctx.spec, ctx.processEnv);
  return t ? agentsTopology(ctx, t, g) : directTopology(ctx, g);
}
