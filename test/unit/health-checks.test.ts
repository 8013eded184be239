import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLag } from '../../src/agent/agent-api.js';
import type { AgentState } from '../../src/agent/agent-loop.js';
import { answerCheck, CHECK_PATHS } from '../../src/agent/health-checks.js';
import type { CheckContext, CheckPath } from '../../src/agent/health-checks.js';
import type { HaState } from '../../src/dcs/ha-values.js';
import { memberRecord } from '../helpers/member-records.js';
import type { InstanceState } from '../../src/postgres/instance-queries.js';

const NOW = 1_000_000;

const record = memberRecord;

/** pg1 leads with pg2 as its synchronous standby (or quorum, with `quorum`); `node` is the agent asked. */
function state(
  node: string,
  o: { quorum?: boolean; replayLag?: number; streaming?: boolean; lastLoopAgo?: number } = {},
): AgentState {
  const leader = record('pg1', {
    role: 'primary',
    syncStandbys: ['pg2'],
    quorumStandbys: o.quorum ? ['pg2'] : [],
  });
  const ha: HaState = {
    view: {
      leader: { node: 'pg1', term: 3, lease: 'L', ready: true, followable: true },
      lastLeaderLsn: { lsn: '0/5000000', timeline: 1 },
      sync: null,
      paused: false,
      switchover: null,
      failover: null,
      heldStopped: [],
      initialize: { node: 'pg1', at: 0, done: true },
    },
    members: new Map([['pg1', leader]]),
    leaderLease: 'L',
    switchoverRefused: null,
    revision: 9,
    syncRevision: 0,
    changedRevision: 9,
  };
  const primary = node === 'pg1';
  return {
    node,
    self: {
      local: primary
        ? { kind: 'primary', timeline: 1, lsn: '0/5000000' }
        : {
            kind: 'replica',
            timeline: 1,
            positionLsn: '0/5000000',
            replayLsn: '0/5000000',
            upstream: 'pg1',
            streaming: o.streaming ?? true,
            problem: null,
            idleSlots: 0,
          },
      pid: 10,
      instance: null,
      syncStandbys: [],
      quorumStandbys: [],
      flushed: new Map(),
      senders: [],
      slots: [],
    },
    record: record(node, { replayLagBytes: o.replayLag ?? 0, lagBytes: o.replayLag ?? 0 }),
    decision: null,
    ha,
    leaseSafeUntil: primary ? NOW + 1000 : NOW + 1000,
    lastLoopAt: NOW - (o.lastLoopAgo ?? 100),
    lastLoopMs: 1,
    etcdErrors: 0,
    promotions: { leader_lost: 0, operator: 0, switchover: 0 },
    lastFailoverMs: null,
  };
}

const ctx = (query: CheckContext['query'] = {}, nodeTags: Record<string, string> = {}): CheckContext => ({
  now: NOW,
  ttlMs: 1000,
  maximumLagOnFailover: 1048576,
  nodeTags,
  query,
});

const codes = (path: CheckPath, s: AgentState, c = ctx()) => (answerCheck(path, s, c).ok ? 200 : 503);

describe("the agents' health checks, as Patroni's REST API answers them (issue 31, defect 11)", () => {
  it("fails the read-write checks of a primary that refuses writes (an upgrade's fence), and still serves reads", () => {
    const leader = state('pg1');
    const self = leader.self;
    assert.ok(self);
    const fenced: AgentState = {
      ...leader,
      self: { ...self, instance: { writesRefused: true } as InstanceState },
    };
    for (const path of ['/', '/primary', '/master', '/read-write'] as const) {
      assert.equal(codes(path, leader), 200, path);
      assert.deepEqual(answerCheck(path, fenced, ctx()), {
        ok: false,
        why: 'primary refusing writes (default_transaction_read_only: an upgrade)',
      });
    }
    assert.equal(codes('/read-only', fenced), 200);
    assert.equal(codes('/leader', fenced), 200);
  });

  it('answers every path and alias of Patroni for a primary, a synchronous standby and an asynchronous one', () => {
    const want: Record<CheckPath, [number, number, number]> = {
      '/': [200, 503, 503],
      '/primary': [200, 503, 503],
      '/master': [200, 503, 503],
      '/read-write': [200, 503, 503],
      '/leader': [200, 503, 503],
      '/standby-leader': [503, 503, 503],
      '/standby_leader': [503, 503, 503],
      '/replica': [503, 200, 200],
      '/read-only': [200, 200, 200],
      '/sync': [503, 200, 503],
      '/synchronous': [503, 200, 503],
      '/read-only-sync': [200, 200, 503],
      '/read-only-synchronous': [200, 200, 503],
      '/quorum': [503, 503, 503],
      '/read-only-quorum': [200, 503, 503],
      '/async': [503, 503, 200],
      '/asynchronous': [503, 503, 200],
      '/health': [200, 200, 200],
      '/liveness': [200, 200, 200],
      '/readiness': [200, 200, 200],
    };
    assert.deepEqual(Object.keys(want).sort(), [...CHECK_PATHS].sort(), 'every path has its row');
    for (const path of CHECK_PATHS)
      assert.deepEqual(
        [codes(path, state('pg1')), codes(path, state('pg2')), codes(path, state('pg3'))],
        want[path],
        path,
      );
  });

  it('tells a quorum standby from a synchronous one', () => {
    const s = state('pg2', { quorum: true });
    assert.deepEqual(
      ['/quorum', '/read-only-quorum', '/sync', '/async'].map((p) => codes(p as CheckPath, s)),
      [200, 200, 503, 503],
    );
  });

  it('takes ?lag= in bytes or with units, against replayed WAL', () => {
    const s = state('pg3', { replayLag: 20 * 1024 * 1024 });
    assert.equal(codes('/replica', s, ctx({ maxLagBytes: parseLag('16MB') as number })), 503);
    assert.equal(codes('/replica', s, ctx({ maxLagBytes: parseLag('1GB') as number })), 200);
    assert.equal(codes('/async', s, ctx({ maxLagBytes: parseLag('1024kB') as number })), 503);
    assert.deepEqual(['1048576', '1024kB', '16MB', '1GB', '1TB', 'x', '5 PB'].map(parseLag), [
      1048576,
      1048576,
      16 * 1024 ** 2,
      1024 ** 3,
      1024 ** 4,
      null,
      null,
    ]);
    assert.equal(codes('/readiness', s), 503, 'readiness allows maximumLagOnFailover by default');
    assert.equal(codes('/readiness', s, ctx({ maxLagBytes: 1024 ** 3 })), 200);
  });

  it('takes ?replication_state= and ?tag_KEY=VALUE', () => {
    const behind = state('pg3', { streaming: false });
    assert.equal(codes('/replica', behind, ctx({ replicationState: 'streaming' })), 503);
    assert.equal(codes('/replica', behind, ctx({ replicationState: 'in archive recovery' })), 200);
    assert.equal(codes('/replica', state('pg3'), ctx({ replicationState: 'streaming' })), 200);
    const tags = { nofailover: 'true', failover_priority: '0' };
    assert.equal(codes('/replica', state('pg3'), ctx({ tags: { nofailover: 'true' } }, tags)), 200);
    assert.equal(codes('/replica', state('pg3'), ctx({ tags: { nofailover: 'false' } }, tags)), 503);
    assert.equal(codes('/replica', state('pg3'), ctx({ tags: { clonefrom: 'true' } }, tags)), 503);
    assert.equal(
      codes('/primary', state('pg1'), ctx({ tags: { nofailover: 'false' } }, tags)),
      200,
      'the leader paths ignore tags',
    );
  });

  it('gives a replica twice the TTL before /liveness fails, a primary the TTL', () => {
    assert.equal(codes('/liveness', state('pg1', { lastLoopAgo: 1500 })), 503);
    assert.equal(codes('/liveness', state('pg2', { lastLoopAgo: 1500 })), 200);
    assert.equal(codes('/liveness', state('pg2', { lastLoopAgo: 2500 })), 503);
  });
});
