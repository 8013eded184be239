import type { EtcdClient, EtcdKv, EtcdOp, WatchEvent } from './etcd-client.js';
import { haKeys } from './ha-values.js';
import type {
  DcsView,
  HaKeys,
  InitializeMarker,
  HaState,
  LeaderKey,
  LeaderPosition,
  MemberRecord,
  SwitchoverRequest,
  LeaderSyncSet,
  BackupScheduleRecord,
  RecordedSyncSet,
} from './ha-values.js';

/** How long a switchover or failover request lives (its target never took over: abandoned). */
export const REQUEST_TTL_SECONDS = 30;

/** What a watch event under the cluster's root means to an agent. */
export type HaEvent =
  /** The leader key, the pause, a request, or this node's stop hold: what its decisions turn on. */
  | { readonly kind: 'control'; readonly leaderGone: boolean }
  /** A member record: during a switchover, who streams from the target. */
  | { readonly kind: 'member'; readonly node: string }
  | { readonly kind: 'other' };

/**
 * The HA protocol's one home: every read and write of the agents' keys in etcd, as named
 * operations. A write a leader makes is fenced: it is a transaction that compares the leader key
 * is still on the leader's lease, so a leader deposed while it was stopped (SIGSTOP, a long GC, a
 * partition) writes nothing the next election reads. Each returns whether it took effect.
 */
export function haStore(etcd: EtcdClient, cluster: string) {
  const keys = haKeys(cluster);
  /**
   * An operator's request lives on a lease of its own: etcd drops it once it is REQUEST_TTL_SECONDS
   * old, on etcd's clock, so no agent ages it by its own wall clock against the asking host's.
   */
  const putRequest = async (key: string, request: object) => {
    const { id } = await etcd.grant(REQUEST_TTL_SECONDS);
    await etcd.put(key, JSON.stringify(request), id);
  };
  /** The compare that fences a leader's write: the key still lives on `lease`. */
  const onLease = (lease: string) => [{ key: keys.leader, lease }];
  const fenced = async (lease: string, success: EtcdOp[]) =>
    (await etcd.txn({ compare: onLease(lease), success })).succeeded;
  const put = (key: string, value: unknown, lease?: string): EtcdOp => ({
    put: { key, value: JSON.stringify(value), ...(lease ? { lease } : {}) },
  });
  const leaderValue = (node: string, ready: boolean, followable: boolean) => ({ node, ready, followable });
  /** Creates the initialize key unless it exists: true when this call created it. */
  const createInitialize = async (marker: InitializeMarker) =>
    (
      await etcd.txn({
        compare: [{ key: keys.initialize, createRevision: 0 }],
        success: [put(keys.initialize, initializeValue(marker))],
      })
    ).succeeded;
  /** Runs `success` while the initialize key still holds `claim`: true when it did. */
  const onClaim = async (claim: InitializeMarker, success: EtcdOp[]) =>
    (
      await etcd.txn({
        compare: [{ key: keys.initialize, value: JSON.stringify(initializeValue(claim)) }],
        success,
      })
    ).succeeded;

  return {
    keys,
    etcd,

    /** Every HA key of the cluster in one range request (one revision: a consistent view). */
    read: () => readHaState(etcd, keys),

    /** The store's revision now (to watch from). */
    revision: async () => (await etcd.list(keys.leader)).revision,

    // Leases: an agent's own, which its leader key and member record live on.
    grantLease: (ttlSeconds: number) => etcd.grant(ttlSeconds),
    renewLease: (id: string) => etcd.keepAlive(id),
    revokeLease: (id: string) => etcd.revoke(id),
    leaseSecondsLeft: (id: string) => etcd.timeToLive(id),

    /**
     * Takes the free leader key on `lease` (compare: it does not exist), with the synchronous set
     * of the new leader's server in the same transaction: recorded before that server can
     * acknowledge a commit. `syncRevision`: the set's mod revision as the caller read it, whose
     * decision (and whose set in force, kept in a pending record) a newer one would make stale.
     * False: someone holds the key, or the set changed since.
     */
    async takeLeader(o: {
      node: string;
      lease: string;
      ready: boolean;
      followable: boolean;
      sync: RecordedSyncSet | null;
      syncRevision: number;
    }): Promise<boolean> {
      const won = await etcd.txn({
        compare: [
          { key: keys.leader, createRevision: 0 },
          ...(o.sync ? [{ key: keys.sync, modRevision: o.syncRevision }] : []),
        ],
        success: [
          ...(o.sync ? [put(keys.sync, o.sync)] : []),
          put(keys.leader, leaderValue(o.node, o.ready, o.followable), o.lease),
        ],
      });
      return won.succeeded;
    },

    /**
     * Marks the key ready (promoted, slots made: replicas may follow), with the position reached;
     * `sync`: the set its pending record named, now in force, in the same write.
     */
    announceLeader: (
      node: string,
      lease: string,
      position: LeaderPosition | null,
      sync: LeaderSyncSet | null = null,
    ) =>
      fenced(lease, [
        ...(sync ? [put(keys.sync, sync)] : []),
        put(keys.leader, leaderValue(node, true, true), lease),
        ...(position ? [put(keys.lastLeaderLsn, position)] : []),
      ]),

    /** Records the leader's position: what a failover judges candidates' lag by. */
    recordPosition: (lease: string, position: LeaderPosition) =>
      fenced(lease, [put(keys.lastLeaderLsn, position)]),

    /** Records the standbys that may hold an acknowledged commit (decideSyncSet says when). */
    recordSyncSet: (lease: string, set: LeaderSyncSet) => fenced(lease, [put(keys.sync, set)]),

    /**
     * Gives up the key, with what the next election must read in the same transaction: the
     * position of a clean shutdown, or why a switchover was refused.
     */
    releaseLeader: (
      lease: string,
      o: { position?: LeaderPosition; refused?: { request: SwitchoverRequest; reason: string } } = {},
    ) =>
      fenced(lease, [
        ...(o.position ? [put(keys.lastLeaderLsn, o.position)] : []),
        ...(o.refused ? [put(keys.switchover, { ...o.refused.request, refused: o.refused.reason })] : []),
        { delete: { key: keys.leader } },
      ]),

    /** The leader refuses the switchover asked of it, saying why (the operator's command reads it). */
    refuseSwitchover: (lease: string, request: SwitchoverRequest, reason: string) =>
      fenced(lease, [put(keys.switchover, { ...request, refused: reason })]),

    /** The new leader ends the switchover that made it one. */
    finishSwitchover: (lease: string) => fenced(lease, [{ delete: { key: keys.switchover } }]),

    /**
     * Claims the initialization of a cluster with no data yet: true when this agent won (the key
     * did not exist), false when another agent claimed it first or data exists somewhere.
     */
    claimInitialize: (node: string, at: number) => createInitialize({ node, at, done: false }),
    /** The claimant's cluster exists: no one initializes it again, not even the claimant. */
    finishInitialize: (claim: InitializeMarker) =>
      onClaim(claim, [put(keys.initialize, initializeValue({ ...claim, done: true }))]),
    /** Gives up a claim whose initialization failed (its partial data moved aside): anyone may race again. */
    abandonInitialize: (claim: InitializeMarker) => onClaim(claim, [{ delete: { key: keys.initialize } }]),
    /**
     * An agent that finds its node holding data records that the cluster exists, unless someone did:
     * a cluster made by `up`, or before the key existed, is then never initialized a second time.
     */
    markInitialized: (node: string, at: number) => createInitialize({ node, at, done: true }),

    /** An agent's record of its node, on its own lease: gone when the agent is. */
    publishMember: (record: MemberRecord, lease: string) =>
      etcd.put(keys.member(record.node), JSON.stringify(record), lease),

    // What operators ask (their commands, or an agent's API on their behalf).
    requestSwitchover: (r: SwitchoverRequest) => putRequest(keys.switchover, r),
    clearSwitchover: () => etcd.delete(keys.switchover),
    requestFailover: (r: { to: string; force: boolean; at: number }) => putRequest(keys.failover, r),
    clearFailover: () => etcd.delete(keys.failover),
    setPaused: (on: boolean) =>
      on ? etcd.put(keys.paused, JSON.stringify({ at: new Date().toISOString() })) : etcd.delete(keys.paused),
    /** An operator's stop of `node` through its agent: its agent leaves it stopped until cleared. */
    holdStopped: (node: string, on: boolean) =>
      on
        ? etcd.put(keys.heldStopped(node), JSON.stringify({ at: new Date().toISOString() }))
        : etcd.delete(keys.heldStopped(node)),

    /**
     * The cluster's history (outside the root the agents read every loop), where every agent of
     * every host appends what it did and `pgrepl history` reads it from anywhere.
     */
    async appendHistory(e: { readonly at: string; readonly node: string | null }): Promise<void> {
      const at = String(Date.parse(e.at)).padStart(15, '0');
      await etcd.put(`${keys.historyPrefix}${at}-${e.node ?? 'cluster'}`, JSON.stringify(e));
    },
    /** Oldest first. */
    async readHistory<T>(): Promise<T[]> {
      const { kvs } = await etcd.list(keys.historyPrefix);
      return kvs.flatMap((kv) => {
        const e = parse<T>(kv);
        return e === null ? [] : [e];
      });
    },

    /**
     * Claims the cluster's one running backup for the leader on `lease`: true when the leader key is
     * still on that lease and no backup runs. The claim lives on the lease: a leader that dies
     * mid-backup leaves no claim behind.
     */
    claimBackup: async (lease: string, claim: { node: string; type: string; at: number }) =>
      (
        await etcd.txn({
          compare: [...onLease(lease), { key: keys.backupRunning, createRevision: 0 }],
          success: [put(keys.backupRunning, claim, lease)],
        })
      ).succeeded,
    /** Records how a scheduled backup ended, and lets the next one run. */
    finishBackup: async (record: BackupScheduleRecord) => {
      await etcd.txn({
        compare: [],
        success: [put(keys.backupLast, record), { delete: { key: keys.backupRunning } }],
      });
    },
    /** When each type of scheduled backup last ended; nothing yet: none ran. */
    readBackupSchedule: async (): Promise<BackupScheduleRecord> =>
      parse<BackupScheduleRecord>((await etcd.get(keys.backupLast)) ?? undefined) ?? {
        lastEnded: {},
        last: null,
        lastOk: null,
      },

    /** Streams every change under the cluster's root after `afterRevision` (etcd's watch). */
    watch: (afterRevision: number, signal: AbortSignal, onEvents: (events: WatchEvent[]) => void) =>
      etcd.watch(keys.root, { prefix: true, afterRevision, signal }, onEvents),

    /** What an event means to `node`'s agent. */
    classify: (e: WatchEvent, node: string): HaEvent => classify(keys, e, node),
  };
}

export type HaStore = ReturnType<typeof haStore>;

function classify(keys: HaKeys, e: WatchEvent, node: string): HaEvent {
  const k = e.kv.key;
  if ([keys.leader, keys.paused, keys.switchover, keys.failover, keys.heldStopped(node)].includes(k))
    return { kind: 'control', leaderGone: k === keys.leader && e.type === 'delete' };
  if (k.startsWith(keys.membersPrefix) && k !== keys.member(node))
    return { kind: 'member', node: k.slice(keys.membersPrefix.length) };
  return { kind: 'other' };
}

function parse<T>(kv: EtcdKv | undefined): T | null {
  if (!kv) return null;
  try {
    return JSON.parse(kv.value) as T;
  } catch {
    return null;
  }
}

type StoredSwitchover = SwitchoverRequest & { refused?: string };

/** The initialize key's value, its fields always in one order: claims are compared by value. */
function initializeValue(m: InitializeMarker): InitializeMarker {
  return { node: m.node, at: m.at, done: m.done };
}

function initializeView(kv: EtcdKv | undefined): InitializeMarker | null {
  const m = parse<Partial<InitializeMarker>>(kv);
  if (m === null || typeof m.node !== 'string' || typeof m.at !== 'number') return null;
  return { node: m.node, at: m.at, done: m.done === true };
}

async function readHaState(client: EtcdClient, keys: HaKeys): Promise<HaState> {
  const { kvs, revision } = await client.list(keys.root);
  const byKey = new Map(kvs.map((kv) => [kv.key, kv]));
  const leaderKv = byKey.get(keys.leader);
  const leaderValue = parse<{ node: string; ready: boolean; followable?: boolean }>(leaderKv);
  const leader: LeaderKey | null =
    leaderKv && leaderValue
      ? {
          node: leaderValue.node,
          ready: leaderValue.ready === true,
          followable: leaderValue.ready === true || leaderValue.followable === true,
          term: leaderKv.createRevision,
          lease: leaderKv.lease,
        }
      : null;
  const sw = parse<StoredSwitchover>(byKey.get(keys.switchover));
  const members = new Map<string, MemberRecord>();
  const heldStopped: string[] = [];
  for (const kv of kvs)
    if (kv.key.startsWith(keys.membersPrefix)) {
      const m = parse<MemberRecord>(kv);
      if (m) members.set(m.node, m);
    } else if (kv.key.startsWith(keys.heldStoppedPrefix))
      heldStopped.push(kv.key.slice(keys.heldStoppedPrefix.length));
  const failover = parse<{ to: string; force?: boolean; at: number }>(byKey.get(keys.failover));
  return {
    view: {
      leader,
      lastLeaderLsn: parse(byKey.get(keys.lastLeaderLsn)),
      sync: parse(byKey.get(keys.sync)),
      paused: byKey.has(keys.paused),
      // One the leader refused is no longer pending.
      switchover: sw && sw.refused === undefined ? switchoverView(sw, members) : null,
      failover: failover ? { to: failover.to, force: failover.force === true, at: failover.at } : null,
      heldStopped,
      initialize: initializeView(byKey.get(keys.initialize)),
    },
    members,
    leaderLease: leaderKv?.lease ?? null,
    switchoverRefused: sw?.refused ?? null,
    revision,
    syncRevision: byKey.get(keys.sync)?.modRevision ?? 0,
    changedRevision: kvs.reduce((max, kv) => Math.max(max, kv.modRevision), 0),
  };
}

/** A pending switchover, with how far the target and the other replicas have come. */
function switchoverView(
  sw: SwitchoverRequest,
  members: ReadonlyMap<string, MemberRecord>,
): NonNullable<DcsView['switchover']> {
  const notFollowing = [...members.values()]
    .filter((m) => m.role === 'replica' && m.node !== sw.to && m.node !== sw.from)
    .filter((m) => !(m.upstream === sw.to && m.streaming))
    .map((m) => m.node)
    .sort();
  return {
    from: sw.from,
    to: sw.to,
    at: sw.at,
    targetReady: members.get(sw.to)?.slotsFor === sw.at,
    notFollowing,
  };
}
