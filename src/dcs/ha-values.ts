/**
 * The HA protocol's keys and values: where one cluster's state lives in etcd and what each key
 * holds. Only the HA store (ha-store.ts) reads and writes them; everything above takes these types.
 */

/** Where one cluster's HA state lives in etcd: every key under `/pgrepl/<cluster>/`. */
export function haKeys(cluster: string) {
  const root = `/pgrepl/${cluster}/`;
  return {
    root,
    /** Who may run as primary: `{ node, ready, followable }` on the holder's lease. */
    leader: `${root}leader`,
    membersPrefix: `${root}members/`,
    member: (node: string) => `${root}members/${node}`,
    /** The leader's last recorded position: `{ lsn, timeline, node, shutdownCheckpoint? }`. */
    lastLeaderLsn: `${root}optime`,
    /** The standbys that may hold an acknowledged commit: `{ count, standbys, replaces? }`. */
    sync: `${root}sync`,
    /** Present: maintenance mode, agents observe only. */
    paused: `${root}paused`,
    /** An operator's switchover: `{ from, to, at }`, or `{ ..., refused }` when the leader refused it. */
    switchover: `${root}switchover`,
    /** An operator's failover (`pgrepl promote`) while no one leads: `{ to, force, at }`. */
    failover: `${root}failover`,
    /**
     * Which agent initializes (or initialized) the cluster: `{ node, at, done }`, without a lease.
     * Created once, by the one agent that wins the race on a cluster with no data yet, or by the
     * first agent that finds data here already (`done`), so a cluster is never initialized twice.
     */
    initialize: `${root}initialize`,
    /** Present for each node an operator stopped through its agent: it stays stopped. */
    heldStoppedPrefix: `${root}stopped/`,
    heldStopped: (node: string) => `${root}stopped/${node}`,
    /**
     * Outside `root`: it only grows, and the agents read everything under `root` every loop.
     * (`pgrepl history` reads it, from any host.)
     */
    historyPrefix: `/pgrepl-history/${cluster}/`,
    /**
     * Outside `root` too: the leader agent's scheduled backups. `running`, on the leader's lease
     * while one runs (one at a time, cluster-wide); `last`, when each type last ended, and how.
     */
    backupRunning: `/pgrepl-backup/${cluster}/running`,
    backupLast: `/pgrepl-backup/${cluster}/last`,
  };
}

export type HaKeys = ReturnType<typeof haKeys>;

/** A backup the leader's agent ran on schedule. */
export interface ScheduledBackup {
  readonly node: string;
  readonly type: 'full' | 'diff' | 'incr';
  /** Wall-clock ms. */
  readonly startedAt: number;
  readonly endedAt: number;
  readonly ok: boolean;
  readonly label: string | null;
  readonly error: string | null;
}

/** When each type of scheduled backup last ended (wall-clock ms), and the last one itself. */
export interface BackupScheduleRecord {
  readonly lastEnded: Partial<Record<ScheduledBackup['type'], number>>;
  readonly last: ScheduledBackup | null;
  /** The last one that succeeded. */
  readonly lastOk: ScheduledBackup | null;
}

/** The standbys that may hold an acknowledged commit, as the leader records them. */
export interface SyncSet {
  readonly count: number;
  readonly standbys: readonly string[];
}

/** A synchronous set as a leader recorded it. */
export interface LeaderSyncSet extends SyncSet {
  /**
   * The node that recorded it, leader then: every commit acknowledged under the set is in its WAL,
   * so it may be promoted whichever standbys confirm (absent in records of an older pgrepl).
   */
  readonly leader?: string;
}

/** A synchronous set as etcd records it. */
export interface RecordedSyncSet extends LeaderSyncSet {
  /**
   * Present while the leader that recorded this set (with its key, before its promotion) has let no
   * standby follow it: its server cannot yet have acknowledged a commit, so the set it replaced (null:
   * none was) still says which standbys hold the last acknowledged ones. Its announcement drops it.
   * A leader that fails before then leaves the old set in force, not one naming a node that may be
   * gone, which no candidate could satisfy without it.
   */
  readonly replaces?: LeaderSyncSet | null;
}

/** The leader key: who holds it, on which lease, and in which term (the key's create revision). */
export interface LeaderKey {
  readonly node: string;
  readonly term: number;
  /** The lease the key lives on: whoever holds that lease holds the key, whatever `node` says. */
  readonly lease: string;
  /** The holder has promoted and made every slot: replicas may follow it. */
  readonly ready: boolean;
  /**
   * Its slots for every other node exist already (a switchover target makes them before it races):
   * replicas may stream from it before it has promoted, cascading, and follow its new timeline.
   */
  readonly followable: boolean;
}

/** A leader's position as it records it. */
export interface LeaderPosition {
  readonly lsn: string;
  readonly timeline: number | null;
  /** Which node recorded it. */
  readonly node?: string;
  /**
   * Recorded by a leader that stopped cleanly to hand over: `lsn` is where its shutdown
   * checkpoint starts, the last record it wrote. Absent: a running leader's position.
   */
  readonly shutdownCheckpoint?: boolean;
}

/** Who initializes the cluster: the `initialize` key. */
export interface InitializeMarker {
  readonly node: string;
  /** When it was claimed (the claiming agent's clock, epoch ms). */
  readonly at: number;
  /**
   * Its primary runs with the replication role and every node's slot: the cluster exists. False
   * while the initializing agent is at it (or died at it: it resumes when it comes back).
   */
  readonly done: boolean;
}

/** A switchover as an operator asks for it. */
export interface SwitchoverRequest {
  readonly from: string;
  readonly to: string;
  readonly at: number;
}

/** What the agents read from etcd each loop: the input of their decisions. */
export interface DcsView {
  readonly leader: LeaderKey | null;
  /** The last position the leader recorded, and its timeline. */
  readonly lastLeaderLsn: LeaderPosition | null;
  /**
   * The standbys that may hold an acknowledged commit, as the leader recorded them (sync and
   * quorum modes): any `count` of `standbys` acknowledged every commit (syncSetInForce).
   */
  readonly sync: RecordedSyncSet | null;
  readonly paused: boolean;
  /**
   * A switchover an operator asked for (`pgrepl switchover`): the leader `from` hands over to `to`;
   * while it lasts, no other replica races for the key. etcd drops it after REQUEST_TTL_SECONDS.
   */
  readonly switchover:
    | (SwitchoverRequest & {
        /** The target made every other node's slot on itself for this request: they may stream from it. */
        readonly targetReady: boolean;
        /** The replicas with a live agent, target and leader aside, that do not stream from the target yet. */
        readonly notFollowing: readonly string[];
      })
    | null;
  /**
   * A failover an operator asked for (`pgrepl promote`) while no one holds the key: only `to` races,
   * past the ranking (and, with `force`, past maximumLagOnFailover, the sync rule and its own
   * problem). It holds even in pause: the operator asked. etcd drops it after REQUEST_TTL_SECONDS.
   */
  readonly failover: { readonly to: string; readonly force: boolean; readonly at: number } | null;
  /** Nodes an operator stopped through their agent (`pgrepl stop NODE`): their agents leave them stopped. */
  readonly heldStopped: readonly string[];
  /** Who initializes or initialized the cluster; null: no agent has claimed it or found data yet. */
  readonly initialize: InitializeMarker | null;
}

/** What each agent publishes about its node every loop, on its own lease (gone when it dies). */
export interface MemberRecord {
  readonly node: string;
  readonly role: 'primary' | 'replica' | 'stopped' | 'starting';
  readonly timeline: number | null;
  /** A primary's current WAL position; a replica's furthest held (received or replayed). */
  readonly lsn: string | null;
  readonly replayLsn: string | null;
  /** Bytes behind the leader's current position (replicas, as the leader's last record says). */
  readonly lagBytes: number | null;
  /** Why it cannot be promoted now; null when it can. */
  readonly problem: string | null;
  /** A replica's upstream, as its primary_conninfo names it; null on any other. */
  readonly upstream: string | null;
  /** A replica whose WAL receiver streams now. */
  readonly streaming: boolean;
  /** The switchover request (its `at`) for which a target made the other nodes' slots on itself. */
  readonly slotsFor: number | null;
  /** On the primary: the standbys it waits for now (pg_stat_replication sync_state sync or quorum). */
  readonly syncStandbys: readonly string[];
  /** On the primary: of those, the ones in a quorum (sync_state quorum, ANY k). */
  readonly quorumStandbys: readonly string[];
  /** A replica's bytes of WAL not yet replayed behind the leader's last recorded position. */
  readonly replayLagBytes: number | null;
  readonly decision: string;
  readonly reason: string;
  /** The agent's HTTP API, http://host:port. */
  readonly api: string;
  readonly pid: number;
  /** When the agent wrote it (its clock, epoch ms). */
  readonly at: number;
}

/** One read of the cluster's HA keys: what a decision needs, and each live agent's record. */
export interface HaState {
  readonly view: DcsView;
  readonly members: ReadonlyMap<string, MemberRecord>;
  /** The leader key's lease (to renew it under compare), null when there is no leader. */
  readonly leaderLease: string | null;
  /** Why the leader refused the switchover asked for; null when none was refused. */
  readonly switchoverRefused: string | null;
  readonly revision: number;
  /** The synchronous set's mod revision (0: none recorded): a new leader's record replaces what it read. */
  readonly syncRevision: number;
  /** The newest change under the cluster's root (the highest mod revision of its keys). */
  readonly changedRevision: number;
}
