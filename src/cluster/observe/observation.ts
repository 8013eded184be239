import type { DataDirState } from '../../postgres/instance-control.js';
import type {
  InstanceState,
  SenderState,
  SlotState,
  UnappliedSetting,
  WalReceiverState,
} from '../../postgres/instance-queries.js';
import type { NodeSpec } from '../../spec/cluster-spec.js';
import type { Divergence } from '../decide/decide-divergence.js';

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
  /**
   * On a replica whose replay is behind what it received: whether replay moved within a moment
   * (false: stuck, e.g. waiting on a query conflict). null on a primary or when it has replayed all.
   */
  readonly replayMoving: boolean | null;
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

/**
 * Why nothing may change while some node's address is served from outside its data directory: a
 * stop would stop nothing there and a start would find the port taken, so fencing, promoting or
 * starting could leave two primaries. null when there is no such node.
 */
export function serverOutsideDataDirReason(obs: ClusterObservation): string | null {
  const o = obs.nodes.find((n) => n.serverOutsideDataDir);
  if (!o) return null;
  const { name, host, port, dataDir } = o.node;
  if (!o.server?.ok)
    return `port ${port} on ${host} (node ${name}) is taken by another process; stop it or give ${name} another port in the spec`;
  return (
    `${name}'s address ${host}:${port} is served by a PostgreSQL server that does not run from ${name}'s data directory ` +
    `${dataDir}: pgrepl can neither stop nor start it. If it is ${name}, set ${name}'s dataDir to the directory it ` +
    `runs from; otherwise stop that server or give ${name} another port`
  );
}
