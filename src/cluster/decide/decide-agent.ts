import { parseLsn } from '../../postgres/lsn.js';
import type { DcsView, LeaderKey, LeaderSyncSet } from '../../dcs/ha-values.js';
import type { ReplicationMode } from '../../cluster-spec/cluster-spec.js';
import { compareCandidates, failoverCandidate } from './rank-candidates.js';
import { decideBootstrap } from './decide-bootstrap.js';
import { syncSetInForce } from './decide-sync-set.js';

/** The agent's own PostgreSQL, as it observed it this loop. */
export type LocalServer =
  | { readonly kind: 'primary'; readonly timeline: number | null; readonly lsn: string | null }
  | {
      readonly kind: 'replica';
      readonly timeline: number | null;
      /** The furthest WAL it holds (replicaPosition). */
      readonly positionLsn: string | null;
      readonly replayLsn: string | null;
      /** The node its primary_conninfo names; null when it has none. */
      readonly upstream: string | null;
      readonly streaming: boolean;
      /** Why it cannot be promoted now (paused replay, …); null when it can. */
      readonly problem: string | null;
      /** Replication slots it holds that no standby streams from: they keep its WAL. */
      readonly idleSlots: number;
    }
  /** Not running. `standby`: it has standby.signal; `initialized`: it holds a data directory. */
  | { readonly kind: 'stopped'; readonly standby: boolean; readonly initialized: boolean }
  /** A postmaster runs but does not answer SQL yet (starting, recovering). */
  | { readonly kind: 'starting' };

/** Another node, as its own server answered this loop over SQL, and whether its agent is alive. */
export interface Peer {
  readonly name: string;
  /** Its agent has a member record in etcd (a dead agent's record expires with its lease). */
  readonly agentAlive: boolean;
  /** null: its server did not answer. */
  readonly inRecovery: boolean | null;
  readonly timeline: number | null;
  readonly positionLsn: string | null;
  readonly replayLsn: string | null;
  /** Why its agent says it cannot be promoted (from its member record); null when it can. */
  readonly problem: string | null;
  readonly failoverPriority: number;
  readonly noFailover: boolean;
  readonly specIndex: number;
}

/**
 * How long a leader asked to switch over waits for the other replicas to stream from the target
 * (cascades) before it hands over all the same: they then follow the target after its promotion.
 */
export const CASCADE_WAIT_MS = 2000;

/** Everything one agent decides on: pure data, observed by the loop. */
export interface AgentSnapshot {
  readonly me: string;
  /** The monotonic clock (Clock.now): what the lease, downSince and every deadline are counted on. */
  readonly now: number;
  /**
   * When (on `now`'s clock) this agent first saw the pending switchover request; null: none is
   * pending. A request's `at` is another host's wall clock, which says nothing of its age here: a
   * clock stepped on either host would shorten or stretch the wait. etcd drops abandoned requests
   * (REQUEST_TTL_SECONDS).
   */
  readonly switchoverSeenSince: number | null;
  readonly mode: ReplicationMode;
  readonly maximumLagOnFailover: number;
  readonly failoverPriority: number;
  readonly noFailover: boolean;
  readonly specIndex: number;
  readonly loopWaitMs: number;
  readonly local: LocalServer;
  /** null: etcd did not answer this loop. */
  readonly dcs: DcsView | null;
  /**
   * Until when this agent's lease (and a leader key on it) is sure to live, from the send time of
   * its last successful renewal minus a safety margin; 0 when it has none.
   */
  readonly leaseSafeUntil: number;
  /** This agent's lease; null when it has none. */
  readonly leaseId: string | null;
  /** Failsafe mode is on (ha.failsafe). */
  readonly failsafe: boolean;
  /**
   * A leader in failsafe: until when every other member's promise not to promote holds (counted
   * from when it asked, minus the lease margin); 0 without one.
   */
  readonly failsafeUntil: number;
  /** A member: the leader it promised, over its API, not to promote against, and until when. */
  readonly promisedTo: { readonly leader: string; readonly until: number } | null;
  /**
   * The last read of etcd that succeeded found the leader key on this agent's lease (its live one,
   * or the one it lost during an outage it rode out in failsafe): what a leader goes on from while
   * etcd does not answer, and until etcd revokes the lost lease.
   */
  readonly heldAtLastRead: boolean;
  /** The other nodes (empty when they were not asked this loop). */
  readonly peers: readonly Peer[];
  /** Since when its primary has been stopped while it held the key; null when it is not. */
  readonly downSince: number | null;
  /** How long a crashed primary may take to start again before the key is released. */
  readonly restartBudgetMs: number;
  /** What an operator asked this agent to do (a restart, a stop) while it is under way; null when nothing. */
  readonly operation: string | null;
  /** The switchover request (its `at`) for which this agent made the other nodes' slots; null when none. */
  readonly slotsMadeFor: number | null;
  /** When this agent began (the monotonic clock): how long it has waited for an earlier node to initialize. */
  readonly startedAt: number;
  /** How long it waits for the agent of a node earlier in the spec to initialize the cluster. */
  readonly bootstrapGraceMs: number;
  /** The last action that failed, and when; null when the last of its kind succeeded. */
  readonly lastFailure: { readonly kind: AgentDecision['kind']; readonly at: number } | null;
}

export type AgentDecision =
  | { readonly kind: 'lead'; readonly reason: string }
  | { readonly kind: 'take-key'; readonly reason: string }
  | { readonly kind: 'race'; readonly reason: string }
  /**
   * Initializes the cluster here (decideBootstrap). `claim`: claims the initialize key, then takes
   * the leader key and runs initdb, the role and the slots; `over`: the same under its own
   * unfinished claim, the partial data moved aside; `record`: its primary was announced already,
   * only the claim is left to mark done.
   */
  | { readonly kind: 'initialize'; readonly step: 'claim' | 'over' | 'record'; readonly reason: string }
  | { readonly kind: 'promote'; readonly reason: string }
  | { readonly kind: 'announce'; readonly reason: string }
  | { readonly kind: 'restart'; readonly reason: string }
  | { readonly kind: 'release'; readonly reason: string }
  | { readonly kind: 'fence'; readonly reason: string }
  /** The leader hands over to `to`: stops cleanly, records its shutdown checkpoint, gives up the key. */
  | { readonly kind: 'hand-over'; readonly to: string; readonly reason: string }
  /** Streams from `upstream`: the leader, or a switchover target before it takes over. */
  | { readonly kind: 'follow'; readonly upstream: string; readonly reason: string }
  | { readonly kind: 'start-replica'; readonly leader: string; readonly reason: string }
  /**
   * No one leads and its server is stopped (every host restarted, say): started as a standby of no
   * one, read-only, so that it answers with the WAL it holds and the most advanced node is promoted.
   */
  | { readonly kind: 'start-standby'; readonly reason: string }
  | { readonly kind: 'rejoin'; readonly leader: string; readonly reason: string }
  /**
   * A switchover target that has not received the old leader's shutdown checkpoint yet (the leader
   * gives up the key the moment it is written, while its walsenders still send it): wait for it now.
   */
  | { readonly kind: 'await-wal'; readonly lsn: string; readonly reason: string }
  /** A switchover target makes the other nodes' slots on itself, so that they can follow it at once. */
  | { readonly kind: 'make-slots'; readonly for: number; readonly reason: string }
  /** A replica drops the slots no standby streams from (they would keep its WAL). */
  | { readonly kind: 'drop-slots'; readonly reason: string }
  | { readonly kind: 'wait'; readonly reason: string };

/**
 * What one agent does this loop, and why. Its server may run as a primary only while it holds the
 * leader key on a lease it knows alive; every other case leads to fencing, following or waiting.
 * A failover is raced for only by the one replica that may hold every acknowledged commit and is
 * the most advanced of those that may: the etcd transaction then picks one winner at most.
 */
export function decideAgent(s: AgentSnapshot): AgentDecision {
  const d = decideUnasked(s);
  // The operator's restart or stop acts on the server meanwhile; fencing alone may not wait for it.
  if (s.operation !== null && d.kind !== 'fence')
    return { kind: 'wait', reason: `${s.operation}, asked by an operator, is under way` };
  return paced(s, d);
}

/**
 * Actions that are not tried again within RETRY_AFTER_FAILURE_MS of a failure: each attempt is
 * heavy (initdb, a clone of the whole primary), and what makes one fail (a port taken, a password,
 * a full disk) rarely goes away within a loop.
 */
const PACED: ReadonlySet<AgentDecision['kind']> = new Set(['initialize', 'rejoin', 'race']);
export const RETRY_AFTER_FAILURE_MS = 5000;

/**
 * Why this node is no failover candidate for now: its last race for the key failed (its server
 * died while promoting: a full pg_wal, say). Published with its member record, so that the others
 * do not wait for a node that goes before them but cannot be promoted; otherwise two such nodes
 * take turns winning the key and failing while a healthy one waits.
 */
export function promotionSetback(s: Pick<AgentSnapshot, 'lastFailure' | 'now'>): string | null {
  const f = s.lastFailure;
  if (f?.kind !== 'race' || s.now - f.at >= RETRY_AFTER_FAILURE_MS) return null;
  // Worded the same every loop: the member record is written again only when it says something new.
  return `its promotion failed (its log says why): no failover candidate for ${RETRY_AFTER_FAILURE_MS / 1000} s after that`;
}

function paced(s: AgentSnapshot, d: AgentDecision): AgentDecision {
  const f = s.lastFailure;
  if (f === null || f.kind !== d.kind || !PACED.has(d.kind)) return d;
  const left = f.at + RETRY_AFTER_FAILURE_MS - s.now;
  if (left <= 0) return d;
  return {
    kind: 'wait',
    reason: `${d.kind} failed ${Math.round((s.now - f.at) / 1000)} s ago (the log says why): trying again in ${Math.ceil(left / 1000)} s; meanwhile: ${d.reason}`,
  };
}

function decideUnasked(s: AgentSnapshot): AgentDecision {
  const { local, dcs } = s;
  const leaseAlive = s.leaseSafeUntil > s.now;
  if (dcs === null) {
    if (local.kind !== 'primary')
      return { kind: 'wait', reason: 'etcd does not answer; nothing changes until it does' };
    if (!s.heldAtLastRead)
      return {
        kind: 'fence',
        reason:
          'etcd does not answer, and I did not hold the leader key on my lease when I last read it: stopping writes',
      };
    // It cannot tell an etcd outage from being cut off: it must be unwritable before its lease
    // could have run out for the others, unless every other member promised not to promote
    // meanwhile (failsafe); then until that promise could run out.
    const lease = leaseAlive ? s.leaseSafeUntil : 0;
    const until = Math.max(lease, s.failsafeUntil);
    if (s.now + s.loopWaitMs >= until)
      return {
        kind: 'fence',
        reason: s.failsafe
          ? 'etcd does not answer, my lease could run out, and not every other member confirmed it will not promote (failsafe): stopping writes'
          : 'etcd does not answer and my lease could run out before I can renew it: stopping writes',
      };
    if (s.failsafeUntil > lease)
      return {
        kind: 'lead',
        reason: `etcd does not answer; every other member confirmed it sees no other leader and will not promote (failsafe): still primary for ${Math.round(s.failsafeUntil - s.now)} ms`,
      };
    return {
      kind: 'lead',
      reason: `etcd does not answer; still primary for ${Math.round(s.leaseSafeUntil - s.now)} ms, until my lease could run out`,
    };
  }
  const leader = dcs.leader;
  // Leadership is the key on this agent's own live lease: a key that names this node on another
  // lease (an earlier run's, which it failed to take over) is not its to lead by.
  const mine = leader !== null && leader.node === s.me && leader.lease === s.leaseId && leaseAlive;
  if (dcs.paused && dcs.failover === null) {
    if (local.kind === 'primary' && leader !== null && leader.node !== s.me)
      return {
        kind: 'fence',
        reason: `paused, but ${leader.node} holds the leader key and this node runs as a primary`,
      };
    return { kind: 'wait', reason: 'paused: observing only (`pgrepl unpause` ends it)' };
  }
  const boot = decideBootstrap(s, dcs);
  if (boot !== null) return boot;
  if (mine) return asLeader(s, leader);
  if (dcs.heldStopped.includes(s.me) && local.kind !== 'primary')
    return {
      kind: 'wait',
      reason: `stopped by an operator: \`pgrepl start ${s.me}\` starts it again`,
    };
  if (leader?.node === s.me) {
    // etcd answers again after an outage this leader rode out in failsafe, and still holds its key
    // on the lease it could not renew until its next expiry check: the members' promises hold, and
    // it takes the key anew once etcd revoked it.
    if (
      local.kind === 'primary' &&
      s.heldAtLastRead &&
      leader.lease !== s.leaseId &&
      s.now + s.loopWaitMs < s.failsafeUntil
    )
      return {
        kind: 'wait',
        reason: `etcd answers again, but holds my leader key on lease ${leader.lease}, which I could not renew, until it revokes it; every other member promised not to promote (failsafe): still primary for ${Math.round(s.failsafeUntil - s.now)} ms`,
      };
    const why =
      leader.lease === s.leaseId
        ? 'my lease could have run out, and the leader key with it'
        : `the leader key names me but lives on lease ${leader.lease}, not on mine`;
    if (local.kind === 'primary') return { kind: 'fence', reason: `${why}: stopping writes` };
    return { kind: 'wait', reason: `${why}: waiting for it to expire` };
  }
  if (local.kind === 'primary') {
    if (leader === null) {
      const other = s.peers.find((p) => p.inRecovery === false);
      if (other)
        return {
          kind: 'fence',
          reason: `${other.name} also runs as a primary and no one holds the key: stopping writes here`,
        };
      if (!leaseAlive) return { kind: 'wait', reason: 'no lease yet; taking the key once etcd grants one' };
      return { kind: 'take-key', reason: 'no one holds the leader key and this node is the running primary' };
    }
    return {
      kind: 'fence',
      reason: `${leader.node} holds the leader key (term ${leader.term}); this primary must stop taking writes`,
    };
  }
  if (leader === null) return failover(s, dcs);
  if (!leader.ready && !(leader.followable && local.kind === 'replica'))
    return { kind: 'wait', reason: `${leader.node} took the leader key and is promoting` };
  if (local.kind === 'starting') return { kind: 'wait', reason: 'the server is starting' };
  if (local.kind === 'stopped') {
    // A host with an empty data directory (replaced, wiped, or a node added to the spec) joins by
    // itself: the rejoin re-clones it from the leader through its own slot.
    if (!local.initialized)
      return {
        kind: 'rejoin',
        leader: leader.node,
        reason: `no data directory here: cloning it from ${leader.node} through slot ${s.me}`,
      };
    // A standby that did not start may hold WAL the leader's timeline does not have (a former
    // primary whose rejoin was cut off after standby.signal was written): starting it again fails
    // the same way for ever, so it is rewound, or else cloned again (pg_rewind does nothing to one
    // that needs nothing).
    if (local.standby && s.lastFailure?.kind === 'start-replica')
      return {
        kind: 'rejoin',
        leader: leader.node,
        reason: `stopped standby that did not start as a replica of ${leader.node} (its server log says why; a timeline it cannot follow, say): rejoining it (rewind, else re-clone)`,
      };
    if (local.standby)
      return {
        kind: 'start-replica',
        leader: leader.node,
        reason: `stopped standby: starting it to stream from ${leader.node}`,
      };
    return {
      kind: 'rejoin',
      leader: leader.node,
      reason: `stopped without standby.signal (a former primary): rejoining it to ${leader.node} (rewind, else re-clone)`,
    };
  }
  const sw = activeSwitchover(s);
  if (sw && sw.from === leader.node && sw.to !== s.me && sw.targetReady && cascades(s)) {
    if (local.upstream !== sw.to)
      return {
        kind: 'follow',
        upstream: sw.to,
        reason: `switchover to ${sw.to}: streaming from it before ${sw.from} stops, to follow its promotion without reconnecting`,
      };
    return {
      kind: 'wait',
      reason: `streaming from the switchover target ${sw.to}${local.streaming ? '' : ' (not yet)'} until it takes over from ${sw.from}`,
    };
  }
  if (local.upstream !== leader.node)
    return {
      kind: 'follow',
      upstream: leader.node,
      reason: `streaming from ${local.upstream ?? 'nowhere'}, not from the leader ${leader.node}`,
    };
  const leaderTl = dcs.lastLeaderLsn?.timeline ?? null;
  if (!local.streaming && local.timeline !== null && leaderTl !== null && local.timeline < leaderTl)
    return {
      kind: 'rejoin',
      leader: leader.node,
      reason: `on timeline ${local.timeline}, behind the leader's ${leaderTl}, and not streaming`,
    };
  if (sw?.to === s.me && s.slotsMadeFor !== sw.at) return makeSlots(sw);
  if (local.idleSlots > 0 && leader.ready && sw?.to !== s.me)
    return {
      kind: 'drop-slots',
      reason: `${local.idleSlots} replication slot(s) here that no standby uses would keep this replica's WAL: dropping them`,
    };
  return {
    kind: 'wait',
    reason: `replica of ${leader.node}${local.streaming ? ', streaming' : ', not streaming yet'}`,
  };
}

function asLeader(s: AgentSnapshot, leader: LeaderKey): AgentDecision {
  const { local } = s;
  if (local.kind === 'primary') {
    if (!leader.ready)
      return { kind: 'announce', reason: 'promoted, slots made: telling the replicas to follow' };
    const sw = activeSwitchover(s);
    if (
      sw?.from === s.me &&
      sw.to !== s.me &&
      cascades(s) &&
      sw.notFollowing.length > 0 &&
      s.switchoverSeenSince !== null &&
      s.now - s.switchoverSeenSince < CASCADE_WAIT_MS
    )
      return {
        kind: 'lead',
        reason: `switchover to ${sw.to} asked: waiting for ${sw.notFollowing.join(', ')} to stream from it first`,
      };
    if (sw?.from === s.me && sw.to !== s.me)
      return {
        kind: 'hand-over',
        to: sw.to,
        reason: `switchover to ${sw.to} asked: stopping cleanly and handing over the key`,
      };
    return { kind: 'lead', reason: `leader (term ${leader.term})` };
  }
  if (local.kind === 'replica') {
    if (local.problem) return { kind: 'release', reason: `holding the key, but ${local.problem}` };
    return { kind: 'promote', reason: `won the leader key (term ${leader.term}): promoting` };
  }
  if (local.kind === 'stopped' && !local.standby && local.initialized) {
    const down = s.downSince === null ? 0 : s.now - s.downSince;
    if (down < s.restartBudgetMs)
      return {
        kind: 'restart',
        reason: 'my primary stopped (crashed?) while I hold the key: starting it in place',
      };
    return {
      kind: 'release',
      reason: `my primary has not come back in ${Math.round(down)} ms: releasing the key so a replica takes over now`,
    };
  }
  if (local.kind === 'starting') {
    if (s.downSince === null || s.now - s.downSince < s.restartBudgetMs)
      return { kind: 'wait', reason: 'holding the key; my primary is starting' };
    return {
      kind: 'release',
      reason: `my primary is still starting after ${Math.round(s.now - s.downSince)} ms: releasing the key so a replica takes over now`,
    };
  }
  return { kind: 'release', reason: 'holding the key with no primary here to run' };
}

/** No leader: whether this replica races for the key, or who should and why it waits. */
function failover(s: AgentSnapshot, dcs: DcsView): AgentDecision {
  const { local } = s;
  // A stopped node cannot show what it holds; started read-only, it can be ranked and promoted
  // like any replica (after every host restarted, nobody would lead otherwise).
  if (local.kind === 'stopped' && local.initialized)
    return {
      kind: 'start-standby',
      reason:
        "no leader and this node's server is stopped: starting it read-only, a standby of no one, so that the most advanced node can be promoted",
    };
  if (local.kind !== 'replica')
    return { kind: 'wait', reason: 'no leader; this node is no running replica to promote' };
  if (s.noFailover || s.failoverPriority === 0)
    return {
      kind: 'wait',
      reason: 'no leader; this node is marked never to be promoted (noFailover or failoverPriority 0)',
    };
  // A promise is a promise: not even an operator's failover goes past it.
  if (s.promisedTo !== null && s.promisedTo.until > s.now && s.promisedTo.leader !== s.me)
    return {
      kind: 'wait',
      reason: `no leader key, but ${s.promisedTo.leader} runs as primary in failsafe: I promised it not to promote for ${Math.round(s.promisedTo.until - s.now)} ms more`,
    };
  const asked = s.dcs?.failover ?? null;
  if (asked && asked.to !== s.me)
    return { kind: 'wait', reason: `no leader; an operator asked for ${asked.to} to be promoted` };
  const forced = asked?.force === true;
  if (local.problem && !forced) return { kind: 'wait', reason: `no leader, but ${local.problem}` };
  const primary = s.peers.find((p) => p.inRecovery === false);
  if (primary)
    return {
      kind: 'wait',
      reason: `no leader, but ${primary.name} still answers as a primary: waiting for it to stop`,
    };
  if (!(s.leaseSafeUntil > s.now))
    return { kind: 'wait', reason: 'no leader; no lease of my own to race with yet' };
  const sw = activeSwitchover(s);
  if (sw && sw.to !== s.me)
    return { kind: 'wait', reason: `no leader; switchover from ${sw.from} to ${sw.to} under way` };
  if (sw && s.slotsMadeFor !== sw.at) return makeSlots(sw);
  const last = dcs.lastLeaderLsn;
  // The leader recorded where its shutdown checkpoint starts: the target must hold all of it. A
  // position it recorded while running (it died during the switchover) proves nothing of the
  // kind: the target then goes through the checks of any failover below.
  const clean = sw && last?.shutdownCheckpoint === true && last.node === sw.from ? last : null;
  if (sw && clean && (local.positionLsn === null || parseLsn(local.positionLsn) <= parseLsn(clean.lsn)))
    return {
      kind: 'await-wal',
      lsn: clean.lsn,
      reason: `switchover target: waiting to receive ${sw.from}'s shutdown checkpoint ${clean.lsn} (at ${local.positionLsn})`,
    };
  // Holding the whole shutdown checkpoint of a leader that stopped cleanly, it holds every commit
  // that leader acknowledged: no standby needs to confirm, no one else may race.
  if (sw && clean)
    return {
      kind: 'race',
      reason: `switchover target, holding ${sw.from}'s shutdown checkpoint: taking the key`,
    };
  if (last) {
    if (last.timeline !== null && local.timeline !== null && local.timeline < last.timeline)
      return {
        kind: 'wait',
        reason: `no leader; on timeline ${local.timeline}, behind the last leader's ${last.timeline}`,
      };
    const lag = local.positionLsn === null ? null : parseLsn(last.lsn) - parseLsn(local.positionLsn);
    if (!forced && (lag === null || lag > BigInt(s.maximumLagOnFailover)))
      return {
        kind: 'wait',
        reason: `no leader; ${lag === null ? 'position unknown' : `${lag} bytes behind the last leader position ${last.lsn}`}, more than maximumLagOnFailover ${s.maximumLagOnFailover}`,
      };
  }
  const sync = syncSetInForce(dcs.sync);
  if (s.mode !== 'async' && sync && !forced) {
    const why = syncProblem(s, sync, local.positionLsn);
    if (why) return { kind: 'wait', reason: `no leader; ${why}` };
  }
  if (asked)
    return {
      kind: 'race',
      reason: `no leader; an operator asked for me to be promoted${forced ? ' (forced)' : ''}: racing for the key`,
    };
  const me = failoverCandidate({
    name: s.me,
    rules: s,
    problem: null,
    positionLsn: local.positionLsn,
    replayLsn: local.replayLsn,
  });
  // A peer ranked before this node that the synchronous set rules out, as far as this node can
  // tell, would never race: waiting for it would hold the cluster without a primary.
  const mayRace = (p: Peer) =>
    s.mode === 'async' ||
    sync === null ||
    syncProblem(
      {
        me: p.name,
        peers: [...s.peers, { name: s.me, inRecovery: true, positionLsn: local.positionLsn }],
      },
      sync,
      p.positionLsn,
    ) === null;
  const better = s.peers
    .filter((p) => p.agentAlive && p.inRecovery === true && mayRace(p))
    .map((p) =>
      failoverCandidate({
        name: p.name,
        rules: p,
        problem: p.problem,
        positionLsn: p.positionLsn,
        replayLsn: p.replayLsn,
      }),
    )
    .filter((c) => c.problem === null && compareCandidates(c, me) < 0);
  const [first] = better.sort(compareCandidates);
  if (first)
    return {
      kind: 'wait',
      reason: `no leader; ${first.name} (at ${first.positionLsn}) goes before me (at ${local.positionLsn})`,
    };
  return {
    kind: 'race',
    reason: `no leader; the most advanced eligible replica (at ${local.positionLsn}): racing for the key`,
  };
}

/**
 * Whether, in a switchover, the other replicas move to the target before the leader stops. They
 * then follow its promotion over the connection they have, rather than connect to it after (in sync
 * mode the new primary's first commit waits for one of them: ~50–100 ms of the write gap here). Only
 * where the leader's commits still complete with the target alone streaming from it: asynchronous
 * replication, or one synchronous standby.
 */
function cascades(s: AgentSnapshot): boolean {
  return s.mode === 'async' || (s.dcs?.sync?.count ?? 1) <= 1;
}

function makeSlots(sw: NonNullable<DcsView['switchover']>): AgentDecision {
  return {
    kind: 'make-slots',
    for: sw.at,
    reason: `switchover target: making the other nodes' slots here first, so that they can follow me the moment I hold the key`,
  };
}

type SnapshotBeforePeers = Omit<AgentSnapshot, 'peers'>;

/**
 * The switchover under way, if any. A leader hands over by giving up the key in the transaction
 * that records its shutdown checkpoint: a key gone without that record means the leader died (or
 * lost its lease) before it handed over, and the agents fail over as after any death rather than
 * wait out the request for a hand-over that will never come (issue 31, defect 7).
 */
function activeSwitchover(s: SnapshotBeforePeers): DcsView['switchover'] {
  const sw = s.dcs?.switchover ?? null;
  if (!sw) return null;
  const last = s.dcs?.lastLeaderLsn;
  const handedOver = last?.shutdownCheckpoint === true && last.node === sw.from;
  return s.dcs?.leader === null && !handedOver ? null : sw;
}

/**
 * Whether this loop's decision turns on the other nodes' servers, which the loop then asks over SQL
 * (a second to each, at most): only with no one holding the key, for a failover this node may race
 * in or a primary that must know whether another runs. Not while a switchover names another
 * target, or an operator's failover another node: nobody else races then.
 */
export function needsPeers(s: SnapshotBeforePeers): boolean {
  if (s.dcs === null || s.dcs.leader !== null) return false;
  if (s.local.kind === 'primary') return true;
  if (activeSwitchover(s) !== null) return false;
  const asked = s.dcs?.failover ?? null;
  return asked === null || asked.to === s.me;
}

/**
 * Whether a candidate may hold every acknowledged commit. With any `count` of `n` standbys
 * acknowledging, a candidate needs n − count + 1 of them, itself included, at or behind its
 * position: one of those acknowledged the latest commit, so the candidate has it (Patroni's quorum
 * rule; it also holds for FIRST count, whose acknowledging set is one of those).
 */
export function syncProblem(
  s: { readonly me: string; readonly peers: readonly Pick<Peer, 'name' | 'inRecovery' | 'positionLsn'>[] },
  sync: LeaderSyncSet,
  position: string | null,
): string | null {
  if (position === null) return 'its position is unknown';
  // The leader that recorded the set acknowledged each of those commits after writing it to its own
  // WAL: it holds them all (a promotion replays whatever its pg_wal holds first).
  if (sync.leader === s.me) return null;
  const needed = sync.standbys.length - sync.count + 1;
  const mine = parseLsn(position);
  const confirming = sync.standbys.filter((name) => {
    if (name === s.me) return true;
    const p = s.peers.find((x) => x.name === name);
    return p?.inRecovery === true && p.positionLsn !== null && parseLsn(p.positionLsn) <= mine;
  });
  if (confirming.length >= needed) return null;
  return (
    `only ${confirming.length} of the ${needed} synchronous standbys needed (${sync.count} of ${sync.standbys.join(', ')} ` +
    `acknowledge each commit) confirm they are not ahead of me: I may lack an acknowledged commit`
  );
}
