import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RUNS_AS_PRIMARY } from '../../src/cluster/decide/agent-decisions.js';
import {
  RETRY_AFTER_FAILURE_MS,
  decideAgent,
  needsPeers,
  promotionSetback,
  syncProblem,
} from '../../src/cluster/decide/decide-agent.js';
import type {
  AgentDecision,
  AgentSnapshot,
  LocalServer,
  Peer,
} from '../../src/cluster/decide/decide-agent.js';
import type { DcsView } from '../../src/dcs/ha-values.js';

const NOW = 1_000_000;
/** One lease for every agent of these snapshots: a key that names `me` is on its own lease. */
const LEASE = '7587881234';

const replica = (o: Partial<Extract<LocalServer, { kind: 'replica' }>> = {}): LocalServer => ({
  kind: 'replica',
  timeline: 1,
  positionLsn: '0/5000000',
  replayLsn: '0/5000000',
  upstream: 'pg1',
  streaming: true,
  problem: null,
  idleSlots: 0,
  ...o,
});
const primary: LocalServer = { kind: 'primary', timeline: 1, lsn: '0/5000000' };

const view = (o: Partial<DcsView> = {}): DcsView => ({
  leader: { node: 'pg1', term: 7, lease: LEASE, ready: true, followable: true },
  lastLeaderLsn: { lsn: '0/5000000', timeline: 1 },
  sync: null,
  paused: false,
  switchover: null,
  failover: null,
  heldStopped: [],
  initialize: { node: 'pg1', at: NOW - 60_000, done: true },
  ...o,
});

const peer = (name: string, o: Partial<Peer> = {}): Peer => ({
  name,
  agentAlive: true,
  inRecovery: true,
  timeline: 1,
  positionLsn: '0/5000000',
  replayLsn: '0/5000000',
  problem: null,
  failoverPriority: 1,
  noFailover: false,
  specIndex: Number(name.slice(2)) - 1,
  ...o,
});

const snap = (o: Partial<AgentSnapshot> = {}): AgentSnapshot => ({
  me: 'pg2',
  now: NOW,
  switchoverSeenSince: null,
  mode: 'async',
  maximumLagOnFailover: 1048576,
  failoverPriority: 1,
  noFailover: false,
  specIndex: 1,
  loopWaitMs: 1000,
  local: replica(),
  dcs: view(),
  leaseSafeUntil: NOW + 3000,
  leaseId: LEASE,
  heldAtLastRead: true,
  failsafe: false,
  failsafeUntil: 0,
  promisedTo: null,
  peers: [],
  downSince: null,
  restartBudgetMs: 2000,
  operation: null,
  slotsMadeFor: null,
  startedAt: NOW - 60_000,
  bootstrapGraceMs: 10_000,
  lastFailure: null,
  ...o,
});

/** No leader, pg1 gone: the failover snapshots. */
const leaderless = (o: Partial<AgentSnapshot> = {}) =>
  snap({
    dcs: view({ leader: null }),
    peers: [peer('pg1', { agentAlive: false, inRecovery: null, positionLsn: null }), peer('pg3')],
    ...o,
  });

const decided = (s: AgentSnapshot) => decideAgent(s);

describe('the agent decision: leader', () => {
  it('leads while it holds the key on a live lease and runs as primary', () => {
    const d = decided(snap({ me: 'pg1', local: primary }));
    assert.equal(d.kind, 'lead');
    assert.ok(RUNS_AS_PRIMARY.has(d.kind));
  });

  it('fences when its lease may have run out, though etcd still shows it as leader', () => {
    const d = decided(snap({ me: 'pg1', local: primary, leaseSafeUntil: NOW - 1 }));
    assert.equal(d.kind, 'fence');
    assert.match(d.reason, /my lease could have run out/);
  });

  it('does not lead by a key that names it on another lease: a restarted agent that could not adopt it (issue 31, defect 3)', () => {
    const earlier = view({ leader: { node: 'pg1', term: 7, lease: '1111', ready: true, followable: true } });
    const d = decided(snap({ me: 'pg1', local: primary, dcs: earlier }));
    assert.equal(d.kind, 'fence');
    assert.match(d.reason, /names me but lives on lease 1111, not on mine/);
    assert.equal(decided(snap({ me: 'pg1', local: primary, dcs: earlier, leaseId: null })).kind, 'fence');
    const replicaWithKey = decided(snap({ me: 'pg1', local: replica(), dcs: earlier }));
    assert.equal(replicaWithKey.kind, 'wait', 'nor promotes under it');
    assert.match(replicaWithKey.reason, /waiting for it to expire/);
  });

  it('goes on past its lease through an etcd outage only while every member promised not to promote (failsafe, issue 31, defect 12)', () => {
    const outage = { me: 'pg1', local: primary, dcs: null, failsafe: true, leaseSafeUntil: NOW - 1 } as const;
    const kept = decided(snap({ ...outage, failsafeUntil: NOW + 1800 }));
    assert.equal(kept.kind, 'lead');
    assert.match(
      kept.reason,
      /every other member confirmed it sees no other leader and will not promote \(failsafe\): still primary for 1800 ms/,
    );
    const lapsed = decided(snap({ ...outage, failsafeUntil: NOW + 900 }));
    assert.equal(lapsed.kind, 'fence', 'not past the next loop');
    assert.match(lapsed.reason, /not every other member confirmed/);
    assert.equal(decided(snap({ ...outage, failsafeUntil: 0 })).kind, 'fence');
    assert.equal(
      decided(snap({ ...outage, failsafeUntil: NOW + 5000, heldAtLastRead: false })).kind,
      'fence',
      'only the leader it was',
    );
  });

  it('stays primary when etcd is back but still holds its key on the lease it lost in failsafe, until etcd revokes it', () => {
    // The key names pg1 on lease 1111: the one pg1's agent could not renew while etcd was away.
    const back = {
      me: 'pg1',
      local: primary,
      dcs: view({ leader: { node: 'pg1', term: 7, lease: '1111', ready: true, followable: true } }),
      failsafe: true,
      heldAtLastRead: true,
    } as const;
    const kept = decided(snap({ ...back, failsafeUntil: NOW + 2000 }));
    assert.equal(kept.kind, 'wait');
    assert.match(
      kept.reason,
      /holds my leader key on lease 1111, which I could not renew.*still primary for 2000 ms/,
    );
    assert.ok(!RUNS_AS_PRIMARY.has(kept.kind), 'it takes no leader action meanwhile');
    assert.equal(decided(snap({ ...back, failsafeUntil: NOW + 900 })).kind, 'fence', 'not past its promises');
    assert.equal(decided(snap({ ...back, failsafeUntil: 0 })).kind, 'fence', 'nor without any');
    assert.equal(
      decided(snap({ ...back, failsafeUntil: NOW + 2000, heldAtLastRead: false })).kind,
      'fence',
      'an earlier run’s lease is not its own (defect 3)',
    );
    // Revoked: it takes the key anew.
    const revoked = decided(snap({ ...back, dcs: view({ leader: null }), failsafeUntil: NOW + 2000 }));
    assert.equal(revoked.kind, 'take-key');
  });

  it('does not race, even when an operator asks, while it promised a leader in failsafe not to', () => {
    const promisedTo = { leader: 'pg1', until: NOW + 600 };
    const d = decided(leaderless({ promisedTo }));
    assert.equal(d.kind, 'wait');
    assert.match(d.reason, /pg1 runs as primary in failsafe: I promised it not to promote for 600 ms more/);
    const asked = view({ leader: null, failover: { to: 'pg2', force: true, at: NOW } });
    assert.equal(decided(leaderless({ promisedTo, dcs: asked })).kind, 'wait');
    assert.equal(
      decided(leaderless({ promisedTo: { leader: 'pg1', until: NOW - 1 } })).kind,
      'race',
      'once it ran out',
    );
  });

  it('goes on through an etcd outage only if it held the key on its lease at its last read', () => {
    const d = decided(snap({ me: 'pg1', local: primary, dcs: null, heldAtLastRead: false }));
    assert.equal(d.kind, 'fence');
    assert.match(d.reason, /did not hold the leader key on my lease/);
  });

  it('keeps the primary while etcd is silent only until the lease could run out before the next loop', () => {
    assert.equal(
      decided(snap({ me: 'pg1', local: primary, dcs: null, leaseSafeUntil: NOW + 2500 })).kind,
      'lead',
    );
    const d = decided(snap({ me: 'pg1', local: primary, dcs: null, leaseSafeUntil: NOW + 900 }));
    assert.equal(d.kind, 'fence');
    assert.match(d.reason, /etcd does not answer/);
  });

  it('restarts a crashed primary in place within the budget, then releases the key', () => {
    const stopped: LocalServer = { kind: 'stopped', standby: false, initialized: true };
    assert.equal(decided(snap({ me: 'pg1', local: stopped, downSince: NOW - 100 })).kind, 'restart');
    const late = decided(snap({ me: 'pg1', local: stopped, downSince: NOW - 2500 }));
    assert.equal(late.kind, 'release');
    assert.match(late.reason, /has not come back in 2500 ms/);
    assert.equal(
      decided(snap({ me: 'pg1', local: { kind: 'starting' }, downSince: NOW - 500 })).kind,
      'wait',
    );
    assert.equal(
      decided(snap({ me: 'pg1', local: { kind: 'starting' }, downSince: NOW - 2100 })).kind,
      'release',
    );
  });

  it('promotes a replica that won the key, and announces once it is primary', () => {
    const won = view({ leader: { node: 'pg2', term: 9, lease: LEASE, ready: false, followable: false } });
    assert.equal(decided(snap({ dcs: won })).kind, 'promote');
    assert.equal(decided(snap({ dcs: won, local: primary })).kind, 'announce');
  });

  it('releases a key it holds when its replica cannot be promoted', () => {
    const won = view({ leader: { node: 'pg2', term: 9, lease: LEASE, ready: false, followable: false } });
    const d = decided(snap({ dcs: won, local: replica({ problem: 'its replay is paused' }) }));
    assert.equal(d.kind, 'release');
  });
});

describe('the agent decision: a primary without the key', () => {
  it('takes the free key as the only running primary', () => {
    assert.equal(
      decided(snap({ me: 'pg1', local: primary, dcs: view({ leader: null }), peers: [peer('pg2')] })).kind,
      'take-key',
    );
  });

  it('fences when another node holds the key', () => {
    const d = decided(snap({ local: primary }));
    assert.equal(d.kind, 'fence');
    assert.match(d.reason, /pg1 holds the leader key \(term 7\)/);
  });

  it('fences when another primary answers and no one holds the key', () => {
    const d = decided(
      snap({ local: primary, dcs: view({ leader: null }), peers: [peer('pg1', { inRecovery: false })] }),
    );
    assert.equal(d.kind, 'fence');
  });

  it('fences even while paused when someone else holds the key', () => {
    assert.equal(decided(snap({ local: primary, dcs: view({ paused: true }) })).kind, 'fence');
  });
});

describe('the agent decision: replicas', () => {
  it('waits as a streaming replica of the leader', () => {
    assert.equal(decided(snap()).kind, 'wait');
  });

  it('follows the leader when it streams from another node', () => {
    const d = decided(snap({ local: replica({ upstream: 'pg3' }) }));
    assert.deepEqual([d.kind, 'upstream' in d ? d.upstream : null], ['follow', 'pg1']);
  });

  it('waits while the new leader is still promoting', () => {
    assert.equal(
      decided(
        snap({
          dcs: view({ leader: { node: 'pg3', term: 8, lease: LEASE, ready: false, followable: false } }),
        }),
      ).kind,
      'wait',
    );
  });

  it('starts a stopped standby and rejoins a stopped former primary', () => {
    assert.equal(
      decided(snap({ local: { kind: 'stopped', standby: true, initialized: true } })).kind,
      'start-replica',
    );
    assert.equal(
      decided(snap({ local: { kind: 'stopped', standby: false, initialized: true } })).kind,
      'rejoin',
    );
  });

  it('rejoins a stopped standby whose start as a replica failed, rather than start it again for ever', () => {
    // Seen in the lab: a former primary's rejoin was cut off after it had become a standby; its WAL
    // went past the leader's fork ("requested timeline 20 does not contain minimum recovery point").
    const stopped = { kind: 'stopped', standby: true, initialized: true } as const;
    const d = decided(snap({ local: stopped, lastFailure: { kind: 'start-replica', at: 0 } }));
    assert.equal(d.kind, 'rejoin');
    assert.match(d.reason, /did not start as a replica of pg1/);
    // Another failure does not make it rewind a standby that may start.
    assert.equal(
      decided(snap({ local: stopped, lastFailure: { kind: 'rejoin', at: 0 } })).kind,
      'start-replica',
    );
  });

  it('clones an empty data directory from the leader by itself (a replaced host, a node added later)', () => {
    const d = decided(snap({ local: { kind: 'stopped', standby: false, initialized: false } }));
    assert.equal(d.kind, 'rejoin');
    assert.match(d.reason, /^no data directory here: cloning it from pg\d through slot pg\d$/);
    // Not while its leader is still promoting: there is nothing to clone from yet.
    const promoting = snap({
      local: { kind: 'stopped', standby: false, initialized: false },
      dcs: view({ leader: { node: 'pg3', term: 8, lease: LEASE, ready: false, followable: false } }),
    });
    assert.equal(decided(promoting).kind, 'wait');
  });

  it('rejoins a replica left on an older timeline that does not stream', () => {
    const d = decided(
      snap({
        local: replica({ timeline: 1, streaming: false }),
        dcs: view({ lastLeaderLsn: { lsn: '0/6000000', timeline: 2 } }),
      }),
    );
    assert.equal(d.kind, 'rejoin');
  });

  it('observes only while paused', () => {
    assert.equal(decided(leaderless({ dcs: view({ leader: null, paused: true }) })).kind, 'wait');
  });
});

describe('the agent decision: failover', () => {
  it('races when it is the most advanced eligible replica', () => {
    const d = decided(leaderless({ local: replica({ positionLsn: '0/5000100' }) }));
    assert.equal(d.kind, 'race');
  });

  it('waits for a more advanced replica, and on a tie for the earlier node in the spec', () => {
    assert.match(
      decided(leaderless({ peers: [peer('pg3', { positionLsn: '0/5000100' })] })).reason,
      /pg3 .* goes before me/,
    );
    assert.equal(decided(leaderless()).kind, 'race', 'pg2 is before pg3 in the spec');
    assert.equal(decided(leaderless({ me: 'pg3', specIndex: 2, peers: [peer('pg2')] })).kind, 'wait');
  });

  it('lets a higher failoverPriority win a tie, and never races with priority 0 or noFailover', () => {
    assert.equal(decided(leaderless({ peers: [peer('pg3', { failoverPriority: 5 })] })).kind, 'wait');
    assert.equal(decided(leaderless({ failoverPriority: 0 })).kind, 'wait');
    assert.equal(decided(leaderless({ noFailover: true })).kind, 'wait');
    assert.equal(
      decided(leaderless({ peers: [peer('pg3', { positionLsn: '0/5000100', noFailover: true })] })).kind,
      'race',
    );
  });

  it('does not defer to a replica whose agent is dead, or that cannot be promoted', () => {
    assert.equal(
      decided(leaderless({ peers: [peer('pg3', { positionLsn: '0/5000100', agentAlive: false })] })).kind,
      'race',
    );
    assert.equal(
      decided(leaderless({ peers: [peer('pg3', { positionLsn: '0/5000100', problem: 'paused' })] })).kind,
      'race',
    );
  });

  it('waits while any node still answers as a primary', () => {
    const d = decided(leaderless({ peers: [peer('pg1', { inRecovery: false })] }));
    assert.equal(d.kind, 'wait');
    assert.match(d.reason, /pg1 still answers as a primary/);
  });

  it('refuses beyond maximumLagOnFailover of the last leader position, and on an older timeline', () => {
    const far = decided(
      leaderless({ dcs: view({ leader: null, lastLeaderLsn: { lsn: '0/7000000', timeline: 1 } }) }),
    );
    assert.equal(far.kind, 'wait');
    assert.match(far.reason, /33554432 bytes behind the last leader position 0\/7000000/);
    const old = decided(
      leaderless({ dcs: view({ leader: null, lastLeaderLsn: { lsn: '0/5000000', timeline: 2 } }) }),
    );
    assert.match(old.reason, /behind the last leader's 2/);
  });

  it('needs a lease of its own to race with', () => {
    assert.equal(decided(leaderless({ leaseSafeUntil: 0 })).kind, 'wait');
  });

  it('in sync mode, races only with n − k + 1 standbys confirming it is not behind them', () => {
    const sync = { count: 1, standbys: ['pg2', 'pg3'] };
    const dcs = view({ leader: null, sync });
    assert.equal(decided(leaderless({ mode: 'sync', dcs })).kind, 'race', 'pg3 is at the same position');
    const ahead = decided(
      leaderless({
        mode: 'sync',
        dcs,
        peers: [peer('pg3', { positionLsn: '0/5000100', agentAlive: false })],
      }),
    );
    assert.equal(ahead.kind, 'wait');
    assert.match(ahead.reason, /may lack an acknowledged commit/);
    const silent = decided(
      leaderless({ mode: 'sync', dcs, peers: [peer('pg3', { inRecovery: null, positionLsn: null })] }),
    );
    assert.equal(silent.kind, 'wait', 'a standby that does not answer may hold the acknowledged commit');
  });

  it('lets the leader that recorded the set be promoted, and no peer the set rules out hold it back', () => {
    // pg3 led and recorded pg1 and pg2; its server crashed and it gave the key up; pg1 is gone (its
    // data being cloned again). Every commit pg3 acknowledged is in its own WAL.
    const recorded = { count: 1, standbys: ['pg1', 'pg2'], leader: 'pg3' };
    const dead = peer('pg1', { agentAlive: true, inRecovery: null, positionLsn: null });
    const pg3 = {
      me: 'pg3',
      specIndex: 2,
      mode: 'sync',
      dcs: view({ leader: null, sync: recorded }),
    } as const;
    // pg2 goes before pg3 in the spec, but cannot be promoted without pg1's confirmation.
    const d = decided(leaderless({ ...pg3, peers: [dead, peer('pg2')] }));
    assert.equal(d.kind, 'race', d.reason);
    const pg2 = decided(leaderless({ mode: 'sync', dcs: pg3.dcs, peers: [dead, peer('pg3')] }));
    assert.equal(pg2.kind, 'wait', 'pg2 may lack what pg3 acknowledged with pg1');
    assert.match(pg2.reason, /may lack an acknowledged commit/);
    const older = { count: 1, standbys: ['pg1', 'pg2'] };
    const unknown = decided(
      leaderless({ ...pg3, dcs: view({ leader: null, sync: older }), peers: [dead, peer('pg2')] }),
    );
    assert.equal(
      unknown.kind,
      'wait',
      'a record that does not name its leader promotes no one without the standbys',
    );
  });

  it('steps a node whose promotion failed aside, and the others go past it', () => {
    // pg2's server died while promoting (a full pg_wal): it does not race again at once, and says
    // so in its member record; pg3, behind it in the ranking, no longer waits for it.
    const failed = { kind: 'race', at: NOW - 2000 } as const;
    const d = decided(leaderless({ lastFailure: failed }));
    assert.equal(d.kind, 'wait');
    assert.match(d.reason, /^race failed 2 s ago .* trying again in 3 s/);
    assert.equal(decided(leaderless({ lastFailure: { ...failed, at: NOW - 5000 } })).kind, 'race');
    const setback = promotionSetback({ lastFailure: failed, now: NOW });
    assert.match(setback ?? '', /promotion failed/);
    assert.equal(promotionSetback({ lastFailure: { kind: 'rejoin', at: NOW }, now: NOW }), null);
    const pg3 = { me: 'pg3', specIndex: 2, local: replica({ positionLsn: '0/5000000' }) };
    const ahead = peer('pg2', { positionLsn: '0/5000100' });
    assert.equal(decided(leaderless({ ...pg3, peers: [ahead] })).kind, 'wait', 'pg2 goes first');
    const other = decided(leaderless({ ...pg3, peers: [{ ...ahead, problem: setback }] }));
    assert.equal(other.kind, 'race', other.reason);
  });

  it('judges by the set a leader replaced while that leader let no standby follow it', () => {
    // pg3 won the key while pg1 was cut off, recorded pg1 and pg2 pending, and failed before it
    // announced: it cannot have acknowledged a commit, so pg1's set (pg2 and pg3) still holds.
    const pending = { count: 1, standbys: ['pg1', 'pg2'], replaces: { count: 1, standbys: ['pg2', 'pg3'] } };
    const peers = [peer('pg1', { agentAlive: false, inRecovery: null, positionLsn: null }), peer('pg3')];
    const d = decided(leaderless({ mode: 'sync', dcs: view({ leader: null, sync: pending }), peers }));
    assert.equal(d.kind, 'race', d.reason);
    const announced = { count: 1, standbys: ['pg1', 'pg2'] };
    const held = decided(leaderless({ mode: 'sync', dcs: view({ leader: null, sync: announced }), peers }));
    assert.equal(held.kind, 'wait', 'announced, pg3 may have acknowledged commits that only pg1 holds');
    assert.match(held.reason, /may lack an acknowledged commit/);
    const first = decided(
      leaderless({
        mode: 'sync',
        dcs: view({ leader: null, sync: { ...announced, replaces: null } }),
        peers,
      }),
    );
    assert.equal(first.kind, 'race', 'the first leader replaced no set: nothing was acknowledged before it');
  });
});

describe('the agent decision: switchover', () => {
  const asked = { from: 'pg1', to: 'pg3', at: NOW - 100, targetReady: false, notFollowing: [] };

  it('makes the leader hand over to the target', () => {
    const d = decided(snap({ me: 'pg1', local: primary, dcs: view({ switchover: asked }) }));
    assert.deepEqual([d.kind, 'to' in d ? d.to : null], ['hand-over', 'pg3']);
  });

  it('moves the other replicas to a ready target before the leader stops, where its commits allow', () => {
    const ready = { ...asked, targetReady: true, notFollowing: ['pg2'] };
    const d = decided(snap({ dcs: view({ switchover: ready }) }));
    assert.deepEqual([d.kind, 'upstream' in d ? d.upstream : null], ['follow', 'pg3']);
    const notYet = decided(snap({ dcs: view({ switchover: { ...ready, targetReady: false } }) }));
    assert.equal(notYet.kind, 'wait', 'not before the target made their slots');
    const moved = decided(snap({ local: replica({ upstream: 'pg3' }), dcs: view({ switchover: ready }) }));
    assert.equal(moved.kind, 'wait', 'a moved replica is not sent back to the leader meanwhile');
    assert.match(moved.reason, /streaming from the switchover target pg3/);
    // Two synchronous standbys: with one of them moved, the leader's commits would stall.
    const two = view({ switchover: ready, sync: { count: 2, standbys: ['pg2', 'pg3'] } });
    const stays = decided(snap({ mode: 'quorum', dcs: two }));
    assert.equal(stays.kind, 'wait');
    assert.match(stays.reason, /replica of pg1/);
  });

  it('makes the leader wait for the other replicas to stream from the target, for 2 s at most', () => {
    const waiting = { ...asked, targetReady: true, notFollowing: ['pg2'] };
    const leader = { me: 'pg1', local: primary, dcs: view({ switchover: waiting }) } as const;
    const d = decided(snap({ ...leader, switchoverSeenSince: NOW - 100 }));
    assert.equal(d.kind, 'lead');
    assert.match(d.reason, /waiting for pg2 to stream from it first/);
    const anyway = decided(snap({ ...leader, switchoverSeenSince: NOW - 2500 }));
    assert.equal(anyway.kind, 'hand-over');
    const two = view({ switchover: waiting, sync: { count: 2, standbys: ['pg2', 'pg3'] } });
    const sync = { me: 'pg1', mode: 'sync', local: primary, dcs: two, switchoverSeenSince: NOW } as const;
    assert.equal(decided(snap(sync)).kind, 'hand-over');
  });

  it("waits by its own clock, whatever the asking host's clock wrote in the request", () => {
    const waiting = { ...asked, targetReady: true, notFollowing: ['pg2'] };
    for (const skew of [-3_600_000, 3_600_000]) {
      const dcs = view({ switchover: { ...waiting, at: NOW + skew } });
      const fresh = decided(snap({ me: 'pg1', local: primary, dcs, switchoverSeenSince: NOW - 100 }));
      assert.equal(fresh.kind, 'lead', `a request stamped ${skew} ms away, seen 100 ms ago`);
      const late = decided(snap({ me: 'pg1', local: primary, dcs, switchoverSeenSince: NOW - 2500 }));
      assert.equal(late.kind, 'hand-over', `a request stamped ${skew} ms away, seen 2.5 s ago`);
    }
  });

  const shutdown = { lsn: '0/5000100', timeline: 1, node: 'pg1', shutdownCheckpoint: true };

  it('keeps every replica but the target out of the race once the leader handed over', () => {
    const d = decided(
      leaderless({ dcs: view({ leader: null, switchover: asked, lastLeaderLsn: shutdown }) }),
    );
    assert.equal(d.kind, 'wait');
    assert.match(d.reason, /switchover from pg1 to pg3 under way/);
    assert.equal(
      needsPeers(leaderless({ dcs: view({ leader: null, switchover: asked, lastLeaderLsn: shutdown }) })),
      false,
    );
  });

  it('fails over as after any death when the leader died before it handed over (issue 31, defect 7)', () => {
    // No shutdown checkpoint recorded with the key's release: the leader died mid-switchover.
    const died = view({
      leader: null,
      switchover: asked,
      lastLeaderLsn: { lsn: '0/5000000', timeline: 1, node: 'pg1' },
    });
    const other = decided(leaderless({ dcs: died }));
    assert.equal(other.kind, 'race', 'the most advanced replica races, as in any failover');
    assert.ok(needsPeers(leaderless({ dcs: died })), 'and asks the other servers first');
    assert.ok(needsPeers(leaderless({ me: 'pg3', specIndex: 2, dcs: died })), 'the target too');
  });

  it('lets the target race only once it received the shutdown checkpoint', () => {
    const dcs = view({ leader: null, switchover: asked, lastLeaderLsn: shutdown });
    const peers = [peer('pg1', { inRecovery: null, agentAlive: true, positionLsn: null }), peer('pg2')];
    const early = decided(leaderless({ me: 'pg3', specIndex: 2, dcs, peers, slotsMadeFor: asked.at }));
    assert.deepEqual([early.kind, 'lsn' in early ? early.lsn : null], ['await-wal', '0/5000100']);
    assert.match(early.reason, /waiting to receive pg1's shutdown checkpoint 0\/5000100/);
    const ready = decided(
      leaderless({
        me: 'pg3',
        specIndex: 2,
        dcs,
        peers,
        slotsMadeFor: asked.at,
        local: replica({ positionLsn: '0/5000180' }),
      }),
    );
    assert.equal(ready.kind, 'race');
  });

  it('makes a target whose old leader died during the switchover pass the checks of any failover', () => {
    // A position the leader recorded while running: commits may have followed it on the sync standby.
    const running = { lsn: '0/5000100', timeline: 1, node: 'pg1' };
    const sync = { count: 1, standbys: ['pg2', 'pg3'] };
    // In a switchover the target's loop does not ask the other servers.
    const target = {
      me: 'pg3',
      specIndex: 2,
      mode: 'sync',
      peers: [],
      slotsMadeFor: asked.at,
      local: replica({ positionLsn: '0/5000180' }),
    } as const;
    const dcs = view({ leader: null, switchover: asked, lastLeaderLsn: running, sync });
    const d = decided(leaderless({ ...target, dcs }));
    assert.equal(d.kind, 'wait');
    assert.match(d.reason, /synchronous standbys needed/);
    const byAnother = view({
      leader: null,
      switchover: asked,
      lastLeaderLsn: { ...shutdown, node: 'pg2' },
      sync,
    });
    const other = decided(leaderless({ ...target, dcs: byAnother }));
    assert.equal(other.kind, 'wait', "another node's shutdown checkpoint is not the leader's");
  });

  it("makes the target make the others' slots on itself first, once per request", () => {
    const d = decided(snap({ me: 'pg3', specIndex: 2, dcs: view({ switchover: asked }) }));
    assert.deepEqual([d.kind, 'for' in d ? d.for : null], ['make-slots', asked.at]);
    const done = decided(
      snap({ me: 'pg3', specIndex: 2, dcs: view({ switchover: asked }), slotsMadeFor: asked.at }),
    );
    assert.equal(done.kind, 'wait');
    const released = view({ leader: null, switchover: asked, lastLeaderLsn: shutdown });
    assert.equal(decided(leaderless({ me: 'pg3', specIndex: 2, dcs: released })).kind, 'make-slots');
  });

  it('lets replicas stream from a target that holds the key with its slots made, before it promoted', () => {
    const followable = { node: 'pg3', term: 9, lease: LEASE, ready: false, followable: true };
    const d = decided(snap({ dcs: view({ leader: followable, switchover: asked }) }));
    assert.deepEqual([d.kind, 'upstream' in d ? d.upstream : null], ['follow', 'pg3']);
    const stopped = { kind: 'stopped', standby: false, initialized: true } as const;
    const old = decided(snap({ me: 'pg1', local: stopped, dcs: view({ leader: followable }) }));
    assert.equal(old.kind, 'wait', 'a former primary waits until the new one has promoted');
  });

  it('drops idle slots on a replica once no switchover to it is under way', () => {
    const d = decided(snap({ local: replica({ idleSlots: 2 }) }));
    assert.equal(d.kind, 'drop-slots');
    assert.match(d.reason, /2 replication slot\(s\)/);
    const target = decided(
      snap({
        me: 'pg3',
        specIndex: 2,
        local: replica({ idleSlots: 2 }),
        dcs: view({ switchover: asked }),
        slotsMadeFor: asked.at,
      }),
    );
    assert.equal(target.kind, 'wait', 'the target keeps the slots it made for the switchover');
  });

  it('carries out a request stamped an hour away by a skewed clock (etcd drops abandoned ones)', () => {
    for (const at of [NOW - 3_600_000, NOW + 3_600_000]) {
      const ready = { ...asked, at, targetReady: true };
      const leader = decided(snap({ me: 'pg1', local: primary, dcs: view({ switchover: ready }) }));
      assert.equal(leader.kind, 'hand-over', `stamped ${at - NOW} ms away`);
      const target = decided(snap({ me: 'pg3', specIndex: 2, dcs: view({ switchover: { ...asked, at } }) }));
      assert.equal(target.kind, 'make-slots', `stamped ${at - NOW} ms away`);
    }
  });
});

describe('the agent decision: operator requests', () => {
  const asked = (to: string, force = false) => ({ to, force, at: NOW - 100 });

  it('lets only the asked replica race, even when a peer is further ahead', () => {
    const peers = [
      peer('pg1', { agentAlive: false, inRecovery: null, positionLsn: null }),
      peer('pg3', { positionLsn: '0/6000000' }),
    ];
    const d = decided(leaderless({ peers, dcs: view({ leader: null, failover: asked('pg2') }) }));
    assert.equal(d.kind, 'race');
    assert.match(d.reason, /an operator asked for me to be promoted/);
    const other = decided(
      leaderless({ me: 'pg3', specIndex: 2, dcs: view({ leader: null, failover: asked('pg2') }) }),
    );
    assert.equal(other.kind, 'wait');
    assert.match(other.reason, /asked for pg2 to be promoted/);
  });

  it('keeps maximumLagOnFailover and its own problem unless forced', () => {
    const far = { lastLeaderLsn: { lsn: '0/9000000', timeline: 1 } };
    const lagging = (force: boolean) =>
      decided(
        leaderless({
          dcs: view({ leader: null, ...far, failover: asked('pg2', force) }),
          local: replica({ problem: 'its replay is paused' }),
        }),
      );
    assert.equal(lagging(false).kind, 'wait');
    assert.match(lagging(false).reason, /replay is paused/);
    assert.equal(lagging(true).kind, 'race');
    assert.match(lagging(true).reason, /forced/);
  });

  it('never races while another server still answers as a primary, forced or not', () => {
    const peers = [peer('pg1', { inRecovery: false }), peer('pg3')];
    const d = decided(leaderless({ peers, dcs: view({ leader: null, failover: asked('pg2', true) }) }));
    assert.equal(d.kind, 'wait');
    assert.match(d.reason, /pg1 still answers as a primary/);
  });

  it('carries out an asked failover while paused, and nothing else', () => {
    const paused = { leader: null, paused: true };
    assert.equal(decided(leaderless({ dcs: view({ ...paused, failover: asked('pg2') }) })).kind, 'race');
    assert.equal(decided(leaderless({ dcs: view({ ...paused, failover: null }) })).kind, 'wait');
    const skewed = { to: 'pg2', force: false, at: NOW - 3_600_000 };
    assert.equal(decided(leaderless({ dcs: view({ ...paused, failover: skewed }) })).kind, 'race');
  });

  it('leaves a node an operator stopped stopped', () => {
    const d = decided(
      snap({
        local: { kind: 'stopped', standby: true, initialized: true },
        dcs: view({ heldStopped: ['pg2'] }),
      }),
    );
    assert.equal(d.kind, 'wait');
    assert.match(d.reason, /stopped by an operator: `pgrepl start pg2`/);
    const other = decided(
      snap({
        local: { kind: 'stopped', standby: true, initialized: true },
        dcs: view({ heldStopped: ['pg3'] }),
      }),
    );
    assert.equal(other.kind, 'start-replica');
  });

  it('with no leader, starts a stopped node read-only (a standby of no one), so the most advanced can be found', () => {
    // Every host restarted: no key, every server stopped; a former primary and a replica alike.
    for (const standby of [false, true]) {
      const d = decided(leaderless({ local: { kind: 'stopped', standby, initialized: true } }));
      assert.equal(d.kind, 'start-standby', `standby.signal ${standby}`);
      assert.match(d.reason, /starting it read-only, a standby of no one/);
    }
    // Not a node an operator stopped, nor one with no data (that one clones once someone leads).
    assert.equal(
      decided(
        leaderless({
          local: { kind: 'stopped', standby: true, initialized: true },
          dcs: view({ leader: null, heldStopped: ['pg2'] }),
        }),
      ).kind,
      'wait',
    );
    assert.equal(
      decided(leaderless({ local: { kind: 'stopped', standby: false, initialized: false } })).kind,
      'wait',
    );
    // Started, it answers as a replica with the WAL it holds: the most advanced races.
    const up = decided(
      leaderless({ local: replica({ upstream: null, streaming: false, positionLsn: '0/6000000' }) }),
    );
    assert.equal(up.kind, 'race');
  });

  it('waits while an operation is under way, but still fences', () => {
    const down = { kind: 'stopped', standby: false, initialized: true } as const;
    const leader = decided(snap({ me: 'pg1', local: down, downSince: NOW - 5000, operation: 'restart' }));
    assert.equal(leader.kind, 'wait');
    assert.match(leader.reason, /restart, asked by an operator, is under way/);
    const lost = decided(snap({ me: 'pg1', local: primary, leaseSafeUntil: NOW - 1, operation: 'restart' }));
    assert.equal(lost.kind, 'fence');
  });
});

describe('the quorum rule', () => {
  const peers = (positions: Record<string, string | null>) =>
    Object.entries(positions).map(([name, positionLsn]) =>
      peer(name, { positionLsn, inRecovery: positionLsn === null ? null : true }),
    );

  it('ANY 2 of 4: a candidate needs 3 standbys (itself included) at or behind it', () => {
    const sync = { count: 2, standbys: ['pg2', 'pg3', 'pg4', 'pg5'] };
    const at = (p: Record<string, string | null>) =>
      syncProblem({ me: 'pg2', peers: peers(p) }, sync, '0/5000000');
    assert.equal(at({ pg3: '0/5000000', pg4: '0/4000000', pg5: null }), null);
    assert.match(at({ pg3: '0/5000000', pg4: null, pg5: null }) ?? '', /only 2 of the 3/);
    assert.match(at({ pg3: '0/6000000', pg4: '0/7000000', pg5: '0/4000000' }) ?? '', /only 2 of the 3/);
  });

  it('ANY 1 of 2 standbys after the primary died: both must be accounted for', () => {
    const sync = { count: 1, standbys: ['pg2', 'pg3'] };
    assert.equal(syncProblem({ me: 'pg2', peers: peers({ pg3: '0/5000000' }) }, sync, '0/5000000'), null);
    assert.notEqual(syncProblem({ me: 'pg2', peers: peers({ pg3: null }) }, sync, '0/5000000'), null);
  });

  it('a candidate outside the recorded set counts only the standbys in it', () => {
    const sync = { count: 1, standbys: ['pg3', 'pg4'] };
    assert.equal(
      syncProblem({ me: 'pg2', peers: peers({ pg3: '0/5000000', pg4: '0/5000000' }) }, sync, '0/5000000'),
      null,
    );
    assert.notEqual(
      syncProblem({ me: 'pg2', peers: peers({ pg3: '0/5000000', pg4: null }) }, sync, '0/5000000'),
      null,
    );
  });
});

describe('the agent decision: every reason it gives (issue 31, defect 10)', () => {
  const stopped = (o: Partial<Extract<LocalServer, { kind: 'stopped' }>> = {}): LocalServer => ({
    kind: 'stopped',
    standby: false,
    initialized: true,
    ...o,
  });
  const asked = { from: 'pg1', to: 'pg3', at: NOW - 100, targetReady: true, notFollowing: [] };
  const cases: [string, AgentSnapshot, AgentDecision['kind'], RegExp][] = [
    [
      'a leader through a short etcd outage',
      snap({ me: 'pg1', local: primary, dcs: null, leaseSafeUntil: NOW + 2500 }),
      'lead',
      /etcd does not answer; still primary for 2500 ms, until my lease could run out/,
    ],
    [
      'paused, with another node holding the key',
      snap({ local: primary, dcs: view({ paused: true }) }),
      'fence',
      /paused, but pg1 holds the leader key and this node runs as a primary/,
    ],
    [
      'a primary holding the key on a lease that ran out',
      snap({ me: 'pg1', local: primary, leaseSafeUntil: NOW - 1 }),
      'fence',
      /my lease could have run out, and the leader key with it: stopping writes/,
    ],
    [
      'a primary with no key while another answers as one',
      snap({
        me: 'pg2',
        local: primary,
        dcs: view({ leader: null }),
        peers: [peer('pg1', { inRecovery: false })],
      }),
      'fence',
      /pg1 also runs as a primary and no one holds the key: stopping writes here/,
    ],
    [
      'a primary while another holds the key',
      snap({ local: primary }),
      'fence',
      /pg1 holds the leader key \(term 7\); this primary must stop taking writes/,
    ],
    [
      'a replica while the new leader promotes',
      snap({
        dcs: view({ leader: { node: 'pg3', term: 8, lease: LEASE, ready: false, followable: false } }),
      }),
      'wait',
      /pg3 took the leader key and is promoting/,
    ],
    [
      'a former primary, stopped',
      snap({ local: stopped() }),
      'rejoin',
      /stopped without standby.signal \(a former primary\): rejoining it to pg1/,
    ],
    [
      'a replica during a switchover, moved to the target',
      snap({ dcs: view({ switchover: asked }) }),
      'follow',
      /switchover to pg3: streaming from it before pg1 stops/,
    ],
    [
      'a replica on an older timeline that does not stream',
      snap({
        local: replica({ timeline: 1, streaming: false }),
        dcs: view({ lastLeaderLsn: { lsn: '0/5000000', timeline: 2 } }),
      }),
      'rejoin',
      /on timeline 1, behind the leader's 2, and not streaming/,
    ],
    [
      'a replica with slots nobody uses',
      snap({ local: replica({ idleSlots: 1 }) }),
      'drop-slots',
      /1 replication slot\(s\) here that no standby uses/,
    ],
    ['a replica that streams', snap(), 'wait', /replica of pg1, streaming/],
    [
      'a leader waiting for the others to move to the switchover target',
      snap({
        me: 'pg1',
        local: primary,
        dcs: view({ switchover: { ...asked, notFollowing: ['pg2'] } }),
        switchoverSeenSince: NOW - 100,
      }),
      'lead',
      /switchover to pg3 asked: waiting for pg2 to stream from it first/,
    ],
    [
      'a leader handing over',
      snap({ me: 'pg1', local: primary, dcs: view({ switchover: asked }) }),
      'hand-over',
      /switchover to pg3 asked: stopping cleanly and handing over the key/,
    ],
    [
      'a replica that won the key',
      snap({
        dcs: view({ leader: { node: 'pg2', term: 9, lease: LEASE, ready: false, followable: false } }),
      }),
      'promote',
      /won the leader key \(term 9\): promoting/,
    ],
    [
      'a leader whose crashed primary did not come back',
      snap({ me: 'pg1', local: stopped(), downSince: NOW - 2500 }),
      'release',
      /my primary has not come back in 2500 ms: releasing the key/,
    ],
    [
      'a leader whose primary is still starting',
      snap({ me: 'pg1', local: { kind: 'starting' }, downSince: NOW - 2500 }),
      'release',
      /my primary is still starting after 2500 ms: releasing the key/,
    ],
    [
      'a candidate on an older timeline',
      leaderless({
        local: replica({ timeline: 1 }),
        dcs: view({ leader: null, lastLeaderLsn: { lsn: '0/5000000', timeline: 2 } }),
      }),
      'wait',
      /no leader; on timeline 1, behind the last leader's 2/,
    ],
    [
      'a candidate behind another',
      leaderless({ local: replica({ positionLsn: '0/4FFFF00' }) }),
      'wait',
      /no leader; pg3 \(at 0\/5000000\) goes before me \(at 0\/4FFFF00\)/,
    ],
    [
      'the best candidate',
      leaderless(),
      'race',
      /no leader; the most advanced eligible replica \(at 0\/5000000\): racing for the key/,
    ],
    [
      'a key that names this replica on another lease',
      snap({
        me: 'pg1',
        dcs: view({ leader: { node: 'pg1', term: 7, lease: 'other', ready: true, followable: true } }),
      }),
      'wait',
      /the leader key names me but lives on lease other, not on mine: waiting for it to expire/,
    ],
  ];
  for (const [what, s, kind, reason] of cases)
    it(what, () => {
      const d = decided(s);
      assert.equal(d.kind, kind);
      assert.match(d.reason, reason);
    });
});

describe('the agent decision: initializing a cluster with no data (issue 13)', () => {
  const empty: LocalServer = { kind: 'stopped', standby: false, initialized: false };
  /** Nothing anywhere yet: no key, no leader, the other servers do not answer. */
  const fresh = (o: Partial<AgentSnapshot> = {}) =>
    snap({
      local: empty,
      dcs: view({ leader: null, lastLeaderLsn: null, initialize: null }),
      peers: [
        peer('pg1', { inRecovery: null, agentAlive: false, positionLsn: null }),
        peer('pg3', { inRecovery: null, positionLsn: null }),
      ],
      ...o,
    });

  it('the first node of the spec claims it at once', () => {
    const d = decided(fresh({ me: 'pg1', specIndex: 0, startedAt: NOW }));
    assert.deepEqual([d.kind, d.kind === 'initialize' && d.step], ['initialize', 'claim']);
  });

  it('a later node waits while the agent of an earlier one lives, or may still start', () => {
    const alive = decided(fresh({ peers: [peer('pg1', { inRecovery: null, positionLsn: null })] }));
    assert.equal(alive.kind, 'wait');
    assert.match(alive.reason, /pg1, earlier in the spec, initializes it$/);
    const starting = decided(fresh({ startedAt: NOW - 4000 }));
    assert.equal(starting.kind, 'wait');
    assert.match(starting.reason, /if its agent starts within 6 s/);
  });

  it('a later node claims it once no earlier agent came within the grace', () => {
    const d = decided(fresh({ startedAt: NOW - 10_000 }));
    assert.equal(d.kind, 'initialize');
    assert.match(d.reason, /no agent of a node earlier in the spec came within 10 s/);
  });

  it('never while another server answers: that is a cluster whose agents have not recorded it', () => {
    const d = decided(fresh({ me: 'pg1', specIndex: 0, peers: [peer('pg3', { inRecovery: false })] }));
    assert.equal(d.kind, 'wait');
    assert.match(d.reason, /pg3's server answers/);
  });

  it('never on a node that may not be primary, nor without a lease to claim with', () => {
    for (const o of [{ noFailover: true }, { failoverPriority: 0 }, { leaseSafeUntil: 0 }])
      assert.equal(decided(fresh({ me: 'pg1', specIndex: 0, ...o })).kind, 'wait', JSON.stringify(o));
  });

  it('never where this node holds data, or once the cluster is recorded, or while someone leads', () => {
    const data: LocalServer = { kind: 'stopped', standby: true, initialized: true };
    assert.notEqual(decided(fresh({ me: 'pg1', specIndex: 0, local: data })).kind, 'initialize');
    const done = view({ leader: null, lastLeaderLsn: null, initialize: { node: 'pg1', at: 1, done: true } });
    assert.notEqual(decided(fresh({ me: 'pg1', specIndex: 0, dcs: done })).kind, 'initialize');
    // A leader with an empty data dir elsewhere: this node clones from it.
    const led = decided(fresh({ dcs: view({ initialize: null }) }));
    assert.deepEqual([led.kind, led.kind === 'rejoin' && led.leader], ['rejoin', 'pg1']);
  });

  it('another node initializing: an empty node waits for it, then clones', () => {
    const claimed = view({
      leader: null,
      lastLeaderLsn: null,
      initialize: { node: 'pg1', at: 1, done: false },
    });
    const d = decided(fresh({ dcs: claimed }));
    assert.equal(d.kind, 'wait');
    assert.match(d.reason, /pg1 is initializing the cluster/);
  });

  it('its own unfinished claim: starts over, unless its primary was announced (then only records it)', () => {
    const mine = { node: 'pg2', at: 1, done: false };
    const over = decided(
      fresh({ local: primary, dcs: view({ leader: null, lastLeaderLsn: null, initialize: mine }) }),
    );
    assert.deepEqual([over.kind, over.kind === 'initialize' && over.step], ['initialize', 'over']);
    const announced = view({
      leader: { node: 'pg2', term: 9, lease: LEASE, ready: true, followable: true },
      lastLeaderLsn: { lsn: '0/3000000', timeline: 1, node: 'pg2' },
      initialize: mine,
    });
    const record = decided(fresh({ local: primary, dcs: announced }));
    assert.deepEqual([record.kind, record.kind === 'initialize' && record.step], ['initialize', 'record']);
  });

  it('after a failed attempt, tries again only once RETRY_AFTER_FAILURE_MS passed; a rejoin too', () => {
    const failed = { kind: 'initialize' as const, at: NOW - 2000 };
    const d = decided(fresh({ me: 'pg1', specIndex: 0, lastFailure: failed }));
    assert.equal(d.kind, 'wait');
    assert.match(d.reason, /^initialize failed 2 s ago .* trying again in 3 s; meanwhile: no cluster yet/);
    const later = { kind: 'initialize' as const, at: NOW - RETRY_AFTER_FAILURE_MS };
    assert.equal(decided(fresh({ me: 'pg1', specIndex: 0, lastFailure: later })).kind, 'initialize');
    // A failed clone is not retried every loop either (it copies the whole primary each time).
    const clone = decided(
      fresh({ dcs: view({ initialize: null }), lastFailure: { kind: 'rejoin', at: NOW - 1000 } }),
    );
    assert.equal(clone.kind, 'wait');
    assert.match(clone.reason, /^rejoin failed 1 s ago/);
  });
});
