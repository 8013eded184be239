import type { DataDirState } from '../../postgres/instance-control.js';
import type {
  InstanceState,
  SenderState,
  SlotState,
  UnappliedSetting,
  WalReceiverState,
} from '../../postgres/instance-queries.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import type { Divergence } from './wal-divergence.js';

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
  /**
   * Whether that role's password is the one the spec's secret holds (primaries only; null elsewhere,
   * or when pgrepl has no replication password yet). Only this answer is kept, never the verifier.
   */
  readonly replicationPasswordMatches: boolean | null;
  readonly unappliedSettings: readonly UnappliedSetting[];
  readonly pendingRestart: readonly string[];
  /** Settings this server takes only at a restart (pg_settings.context = 'postmaster'). */
  readonly restartOnlySettings: readonly string[];
  /**
   * On a replica whose replay is behind what it received: whether replay moved within a moment
   * (false: stuck, e.g. waiting on a query conflict). null on a primary or when it has replayed all.
   */
  readonly replayMoving: boolean | null;
  /** The TLS version of pgrepl's own connection to it, null when that is not encrypted. */
  readonly ownTls: string | null;
}

export interface ServerUnreachable {
  readonly ok: false;
  readonly error: string;
}

/** A node's data directory as read on this machine: only a node whose host is this machine has one. */
export type LocalDataDir = DataDirState & {
  readonly local: true;
  /** pgrepl created this directory (so it may delete it). */
  readonly createdByPgrepl: boolean;
  /** An interrupted clone left its temporary directory behind. */
  readonly cloneLeftover: boolean;
  /** The directory exists and holds files, but no PostgreSQL data. */
  readonly foreignContent: boolean;
  /** Current postgresql.conf and pg_hba.conf, null when absent. */
  readonly files: { readonly postgresqlConf: string | null; readonly pgHba: string | null };
  /** Old copies of this directory that re-clones moved aside (`<dataDir>.pgrepl-old-<time>`). */
  readonly movedAside: readonly string[];
};

/**
 * The disk facts of a node on another host: none. What it is comes from what it answers over the
 * network; whether its directory exists, or it is stopped rather than cut off, is not guessed.
 */
export interface NotLocal {
  readonly local: false;
}

/** Everything pgrepl knows about one node right now. */
export interface NodeObservation {
  readonly node: NodeSpec;
  readonly dataDir: LocalDataDir | NotLocal;
  /** A failover fenced this former primary: it may only come back through `rejoin`. */
  readonly fenced: boolean;
  /**
   * What answers on the node's address: the server of its data directory, or, when none runs there
   * but the address still accepts connections, whatever server that is (see serverOutsideDataDir).
   * null: nothing runs for this node.
   */
  readonly server: ServerAnswer | ServerUnreachable | null;
  /**
   * The node's address accepts connections though no server runs in its data directory (the
   * directory was moved, or another server took the port): pgrepl can neither stop nor start it.
   */
  readonly serverOutsideDataDir: boolean;
  /**
   * For a stopped node while one primary runs: whether its history is a prefix of the primary's
   * (checkDivergence). null when not checked (it runs, or no single primary answers).
   */
  readonly divergence: Divergence | null;
}

/** One snapshot of the whole cluster: the input of every decision and of `status`. */
export interface ClusterObservation {
  readonly at: number;
  readonly nodes: readonly NodeObservation[];
}

/** What a node is, derived from what it answered; never assumed from the spec. */
export type ObservedRole = 'primary' | 'replica' | 'down' | 'unreachable' | 'absent';

export function roleOf(o: NodeObservation): ObservedRole {
  // A node on another host is always asked (server is never null): silence there is 'unreachable'.
  if (o.server === null) return o.dataDir.local && o.dataDir.initialized ? 'down' : 'absent';
  if (!o.server.ok) return 'unreachable';
  return o.server.instance.inRecovery ? 'replica' : 'primary';
}

/**
 * The one node that answers as a primary, or null when none or several do: the primary stopped
 * nodes are checked against (observeCluster's divergence check).
 */
export function onlyPrimary(nodes: readonly NodeObservation[]): NodeObservation | null {
  const primaries = nodes.filter((o) => roleOf(o) === 'primary');
  return primaries.length === 1 ? (primaries[0] ?? null) : null;
}

/** The node's data directory as read here; null for a node on another host. */
export function localDir(o: NodeObservation): LocalDataDir | null {
  return o.dataDir.local ? o.dataDir : null;
}

/** Names of the nodes that answer as replicas, except `excluded`. */
export function runningReplicas(obs: ClusterObservation, ...excluded: (string | null)[]): string[] {
  return obs.nodes
    .filter((o) => roleOf(o) === 'replica' && !excluded.includes(o.node.name))
    .map((o) => o.node.name);
}

export const cloneTempDir = (dataDir: string) => `${dataDir}.pgrepl-clone`;
