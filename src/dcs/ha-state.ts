import type { DcsView, LeaderKey } from '../cluster/decide/decide-agent.js';
import type { EtcdClient, EtcdKv } from './etcd-client.js';

/** Where one cluster's HA state lives in etcd: every key under `/pgrepl/<cluster>/`. */
export function haKeys(cluster: string) {
  const root = `/pgrepl/${cluster}/`;
  return {
    root,
    /** Who may run as primary: `{ node, ready, followable }` on the holder's lease. */
    leader: `${root}leader`,
    membersPrefix: `${root}members/`,
    member: (node: string) => `${root}members/${node}`,
    /** The leader's last recorded position: `{ lsn, timeline, node }`. */
    lastLeaderLsn: `${root}optime`,
    /** The standbys that may hold an acknowledged commit: `{ count, standbys }`. */
    sync: `${root}sync`,
    /** Present: maintenance mode, agents observe only. */
    paused: `${root}paused`,
    /** An operator's switchover: `{ from, to, at }`, or `{ ..., refused }` when the leader refused it. */
    switchover: `${root}switchover`,
    /** An operator's failover (`pgrepl promote`) while no one leads: `{ to, force, at }`. */
    failover: `${root}failover`,
    /** Present for each node an operator stopped through its agent: it stays stopped. */
    heldStoppedPrefix: `${root}stopped/`,
    heldStopped: (node: string) => `${root}stopped/${node}`,
    /**
     * Outside `root`: it only grows, and the agents read everything under `root` every loop.
     * (`pgrepl history` reads it, from any host.)
     */
    historyPrefix: `/pgrepl-history/${cluster}/`,
  };
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
}

const parse = <T>(kv: EtcdKv | undefined): T | null => {
  if (!kv) return null;
  try {
    return JSON.parse(kv.value) as T;
  } catch {
    return null;
  }
};

type SwitchoverValue = { from: string; to: string; at: number; refused?: string };

/** Reads every HA key of `cluster` in one range request (one revision: a consistent view). */
export async function readHaState(client: EtcdClient, cluster: string): Promise<HaState> {
  const keys = haKeys(cluster);
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
          lease: leaderKv.lease ?? '0',
        }
      : null;
  const sw = parse<SwitchoverValue>(byKey.get(keys.switchover));
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
    },
    members,
    leaderLease: leaderKv?.lease ?? null,
    switchoverRefused: sw?.refused ?? null,
    revision,
  };
}

/** A pending switchover, with how far the target and the other replicas have come. */
function switchoverView(
  sw: SwitchoverValue,
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
