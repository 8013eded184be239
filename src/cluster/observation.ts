import type { DataDirState } from '../postgres/instance-control.js';
import type {
  InstanceState,
  SenderState,
  SlotState,
  UnappliedSetting,
  WalReceiverState,
} from '../postgres/instance-queries.js';
import type { NodeSpec } from '../spec/cluster-spec.js';

/** What a running server answered over SQL. */
export interface ServerAnswer {
  readonly ok: true;
  readonly instance: InstanceState;
  readonly walReceiver: WalReceiverState | null;
  /** pg_stat_replication (empty on replicas). */
  readonly senders: readonly SenderState[];
  readonly slots: readonly SlotState[];
  /** Whether the replication role exists (asked on primaries only; null elsewhere). */
  readonly replicationRoleExists: boolean | null;
  readonly unappliedSettings: readonly UnappliedSetting[];
  readonly pendingRestart: readonly string[];
}

export interface ServerUnreachable {
  readonly ok: false;
  readonly error: string;
}

/** Everything pgrepl knows about one node right now. */
export interface NodeObservation {
  readonly node: NodeSpec;
  readonly dataDir: DataDirState & {
    /** pgrepl created this directory (so it may delete it). */
    readonly createdByPgrepl: boolean;
    /** An interrupted clone left its temporary directory behind. */
    readonly cloneLeftover: boolean;
    /** The directory exists and holds files, but no PostgreSQL data. */
    readonly foreignContent: boolean;
  };
  /** Current postgresql.conf and pg_hba.conf, null when absent. */
  readonly files: { readonly postgresqlConf: string | null; readonly pgHba: string | null };
  /** A failover fenced this former primary: it may only come back through `rejoin`. */
  readonly fenced: boolean;
  /** null: no server process runs for this data directory. */
  readonly server: ServerAnswer | ServerUnreachable | null;
}

/** One snapshot of the whole cluster: the input of every decision and of `status`. */
export interface ClusterObservation {
  readonly at: number;
  readonly nodes: readonly NodeObservation[];
}

/** What a node is, derived from what it answered; never assumed from the spec. */
export type ObservedRole = 'primary' | 'replica' | 'down' | 'unreachable' | 'absent';

export function roleOf(o: NodeObservation): ObservedRole {
  if (o.server === null) return o.dataDir.initialized ? 'down' : 'absent';
  if (!o.server.ok) return 'unreachable';
  return o.server.instance.inRecovery ? 'replica' : 'primary';
}

/** Names of the nodes that answer as replicas, except `excluded`. */
export function runningReplicas(obs: ClusterObservation, ...excluded: (string | null)[]): string[] {
  return obs.nodes
    .filter((o) => roleOf(o) === 'replica' && !excluded.includes(o.node.name))
    .map((o) => o.node.name);
}

export const cloneTempDir = (dataDir: string) => `${dataDir}.pgrepl-clone`;
