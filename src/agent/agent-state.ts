import type { ClusterContext } from '../cluster/context/cluster-context.js';
import type { AgentDecision } from '../cluster/decide/decide-agent.js';
import type { EtcdClient } from '../dcs/etcd-client.js';
import type { HaState, MemberRecord } from '../dcs/ha-values.js';
import type { HaSpec, NodeSpec } from '../cluster-spec/cluster-spec.js';
import type { FenceLink } from './fence-link.js';
import type { SelfObservation } from './observe-self.js';

/**
 * Why an agent promoted its server: the leader key expired or was released (`leader_lost`), an
 * operator asked for this node (`pgrepl promote`: `operator`), or a switchover handed over to it.
 */
export type PromotionReason = 'leader_lost' | 'operator' | 'switchover';

/** What the agent knows after its last loop: served by its API, published in etcd, logged on change. */
export interface AgentState {
  readonly node: string;
  readonly self: SelfObservation | null;
  /** Its own member record as this loop made it (its lag from the leader position it just read). */
  readonly record: MemberRecord | null;
  readonly decision: AgentDecision | null;
  readonly ha: HaState | null;
  /** Until when its lease is sure to live (the agent's clock: monotonic ms); 0 without one. */
  readonly leaseSafeUntil: number;
  readonly lastLoopAt: number;
  readonly lastLoopMs: number;
  readonly etcdErrors: number;
  /** This agent's promotions since it started, by why. */
  readonly promotions: Readonly<Record<PromotionReason, number>>;
  /** From the leader key's loss (as this agent saw it) to its promoted server taking writes. */
  readonly lastFailoverMs: number | null;
}

/** What an agent knows before its first loop: nothing yet. */
/** The agent holds the leader key and its node runs as the primary: when the leader's own work (schedules, re-syncs) is its. */
export const leadsAsPrimary = (s: AgentState): boolean =>
  s.self?.local.kind === 'primary' && s.ha?.view.leader?.node === s.node;

export function initialAgentState(node: string): AgentState {
  return {
    node,
    self: null,
    record: null,
    decision: null,
    ha: null,
    leaseSafeUntil: 0,
    lastLoopAt: 0,
    lastLoopMs: 0,
    etcdErrors: 0,
    promotions: { leader_lost: 0, operator: 0, switchover: 0 },
    lastFailoverMs: null,
  };
}

export interface AgentDeps {
  readonly ctx: ClusterContext;
  readonly node: NodeSpec;
  readonly ha: HaSpec;
  readonly etcd: EtcdClient;
  readonly fence: FenceLink;
  /** http://host:port of this agent's API, for its member record. */
  readonly api: string;
  /**
   * The agent's context from the spec file as it is now; the agent calls it when the file changed
   * (a node removed), and then acts on the new spec. Absent: the spec is never re-read.
   */
  readonly reload?: () => Promise<ClusterContext>;
  /**
   * Asks every other member's agent to promise not to promote (failsafe), and says who did. Absent:
   * no failsafe round can be made (the leader then stops writes before its lease could run out).
   */
  readonly askFailsafe?: () => Promise<readonly { node: string; ok: boolean; why: string }[]>;
  /** Logs every lease renewal and fence order (PGREPL_AGENT_TRACE=1): to judge a late fence by. */
  readonly trace?: boolean;
  /** Told the state after each loop (the dashboard's series recorder). */
  readonly onLoop?: (state: AgentState) => void;
}

/**
 * How long a crashed primary may take to come back in place before its agent releases the key: half
 * the TTL, and at least 2 s. A crash recovery takes a few hundred milliseconds here, more on a busy
 * host; the fast profile's half TTL (0.5 s) turned some into failovers that cost more than waiting.
 */
export const restartBudgetMs = (ha: HaSpec) => Math.max((ha.ttlSeconds * 1000) / 2, 2000);

/** A margin under the lease, for clock rates and the time a kill takes: 1/8 of the TTL, 0.5 s at most. */
export const leaseMarginMs = (ha: HaSpec) => Math.min(500, (ha.ttlSeconds * 1000) / 8);
