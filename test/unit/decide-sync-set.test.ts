import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  asksAtLeastAsMuch,
  bridgeSyncSet,
  decideSyncSet,
  pendingSyncSet,
  syncSetInForce,
  syncSetToSettle,
} from '../../src/cluster/decide/decide-sync-set.js';
import type { SyncSet } from '../../src/dcs/ha-values.js';

const recorded = { count: 1, standbys: ['pg2', 'pg3'] };
const flushed = (m: Record<string, string | null>) => new Map(Object.entries(m));
const none = flushed({});

/** Every subset of `xs` with `size` members. */
function subsets(xs: readonly string[], size: number): string[][] {
  if (size <= 0) return [[]];
  if (xs.length < size) return [];
  const [first, ...rest] = xs as [string, ...string[]];
  return [...subsets(rest, size - 1).map((s) => [first, ...s]), ...subsets(rest, size)];
}

/** The rule checked by brute force: every confirming set of `record` meets every acknowledging set of `setting`. */
function coversByEnumeration(record: SyncSet, setting: SyncSet): boolean {
  const confirming = subsets(record.standbys, record.standbys.length - record.count + 1);
  const acknowledging = subsets(setting.standbys, setting.count);
  return confirming.every((q) => acknowledging.every((a) => a.some((n) => q.includes(n))));
}

const syncSet = fc
  .subarray(['pg1', 'pg2', 'pg3', 'pg4', 'pg5'], { minLength: 1 })
  .chain((standbys) => fc.integer({ min: 1, max: standbys.length }).map((count) => ({ count, standbys })));

describe('which synchronous set the leader records (issue 31, defect 1)', () => {
  it('judges a record against a setting as enumerating every confirming and acknowledging set does', () => {
    fc.assert(
      fc.property(syncSet, syncSet, (r, s) => asksAtLeastAsMuch(r, s) === coversByEnumeration(r, s)),
      { numRuns: 2000 },
    );
  });

  it('bridges any two sets with a record that covers both settings', () => {
    fc.assert(
      fc.property(syncSet, syncSet, (a, b) => {
        const bridge = bridgeSyncSet(a, b);
        return coversByEnumeration(bridge, a) && coversByEnumeration(bridge, b);
      }),
      { numRuns: 1000 },
    );
  });

  it('keeps the record that matches the spec, whatever the order', () => {
    const d = decideSyncSet({
      recorded,
      desired: { count: 1, standbys: ['pg3', 'pg2'] },
      takenAt: null,
      flushed: none,
    });
    assert.equal(d.kind, 'keep');
  });

  it('records a wider set before the server runs it', () => {
    const desired = { count: 1, standbys: ['pg2', 'pg3', 'pg4'] };
    const d = decideSyncSet({ recorded, desired, takenAt: null, flushed: none });
    assert.equal(d.kind, 'record');
    assert.deepEqual(d.kind === 'record' && d.set, desired);
    assert.equal(
      decideSyncSet({ recorded: null, desired: recorded, takenAt: null, flushed: none }).kind,
      'record',
    );
  });

  // ANY k of n: a candidate needs n − k + 1 confirmations, so a higher k asks less of it.
  for (const how of ['ANY', 'FIRST']) {
    it(`${how} k: a lower count asks more, and is recorded before the server runs it`, () => {
      const from = { count: 2, standbys: ['pg2', 'pg3', 'pg4'] };
      const to = { count: 1, standbys: ['pg2', 'pg3', 'pg4'] };
      const d = decideSyncSet({ recorded: from, desired: to, takenAt: null, flushed: none });
      assert.equal(d.kind, 'record');
      assert.match(d.reason, /1 of pg2, pg3, pg4 asks at least as much of a candidate as 2 of/);
    });

    it(`${how} k: a higher count asks less, and waits until the server runs it and count standbys flushed past`, () => {
      const from = { count: 1, standbys: ['pg2', 'pg3', 'pg4'] };
      const to = { count: 2, standbys: ['pg2', 'pg3', 'pg4'] };
      const before = decideSyncSet({ recorded: from, desired: to, takenAt: null, flushed: none });
      assert.equal(before.kind, 'wait', 'not before the server runs it');
      assert.match(before.reason, /asks less of a candidate/);
      const at = '0/5000000';
      const one = decideSyncSet({
        recorded: from,
        desired: to,
        takenAt: at,
        flushed: flushed({ pg2: '0/5000000', pg3: '0/4FFFFFF', pg4: null }),
      });
      assert.equal(one.kind, 'wait', 'a commit acknowledged by one standby before the change is on one only');
      assert.match(one.reason, /only 1 of the 2 standbys needed flushed past 0\/5000000/);
      const two = decideSyncSet({
        recorded: from,
        desired: to,
        takenAt: at,
        flushed: flushed({ pg2: '0/5000000', pg4: '0/5000100' }),
      });
      assert.equal(two.kind, 'record');
    });
  }

  it('records a narrower set only once enough of it flushed past where the server took it', () => {
    const desired = { count: 1, standbys: ['pg3'] };
    const at = '0/5000000';
    assert.equal(
      decideSyncSet({ recorded, desired, takenAt: null, flushed: flushed({ pg3: '0/6000000' }) }).kind,
      'wait',
    );
    const behind = decideSyncSet({
      recorded,
      desired,
      takenAt: at,
      flushed: flushed({ pg3: '0/4FFFFFF', pg2: '0/9000000' }),
    });
    assert.equal(behind.kind, 'wait', 'the removed node’s position does not count');
    assert.match(behind.reason, /only 0 of the 1/);
    const past = decideSyncSet({ recorded, desired, takenAt: at, flushed: flushed({ pg3: '0/5000000' }) });
    assert.equal(past.kind, 'record');
    assert.match(past.reason, /pg3 flushed past 0\/5000000/);
  });

  it('needs count of the new set: ANY 2 of three left needs two of them past', () => {
    const desired = { count: 2, standbys: ['pg2', 'pg3', 'pg4'] };
    const wide = { count: 2, standbys: ['pg2', 'pg3', 'pg4', 'pg5'] };
    const at = '0/5000000';
    const one = decideSyncSet({
      recorded: wide,
      desired,
      takenAt: at,
      flushed: flushed({ pg2: '0/5000000', pg3: null }),
    });
    assert.equal(one.kind, 'wait');
    const two = decideSyncSet({
      recorded: wide,
      desired,
      takenAt: at,
      flushed: flushed({ pg2: '0/5000000', pg4: '0/5100000' }),
    });
    assert.equal(two.kind, 'record');
  });

  it('a node added and the count raised together: judged as one change', () => {
    // 1 of pg2, pg3 → 2 of pg2, pg3, pg4: 2 confirmations before, 2 after, but one may be pg4,
    // which acknowledged nothing under the old setting.
    const from = { count: 1, standbys: ['pg2', 'pg3'] };
    const to = { count: 2, standbys: ['pg2', 'pg3', 'pg4'] };
    assert.equal(asksAtLeastAsMuch(to, from), false);
    const d = decideSyncSet({ recorded: from, desired: to, takenAt: null, flushed: none });
    assert.notEqual(d.kind, 'record', 'not recorded before the server runs it');
  });

  it('a standby replaced by another: a bridge over both is recorded first, the new set after the flush', () => {
    const from = { count: 1, standbys: ['pg2', 'pg3'] };
    const to = { count: 1, standbys: ['pg3', 'pg4'] };
    const d = decideSyncSet({ recorded: from, desired: to, takenAt: null, flushed: none });
    assert.equal(d.kind, 'record');
    assert.deepEqual(d.kind === 'record' && d.set, { count: 1, standbys: ['pg2', 'pg3', 'pg4'] });
    const bridge = { count: 1, standbys: ['pg2', 'pg3', 'pg4'] };
    const after = decideSyncSet({
      recorded: bridge,
      desired: to,
      takenAt: '0/3000000',
      flushed: flushed({ pg4: '0/3000000' }),
    });
    assert.equal(after.kind, 'record');
    assert.deepEqual(after.kind === 'record' && after.set, to);
  });

  it('at every step of any change, the record covers the setting in force', () => {
    // pre → server takes the new setting → post (with every standby flushed past): what is
    // recorded at each moment must cover both the setting running then and, until the flush, the old one.
    fc.assert(
      fc.property(syncSet, syncSet, (from, to) => {
        let record: SyncSet = from;
        const pre = decideSyncSet({ recorded: record, desired: to, takenAt: null, flushed: none });
        if (pre.kind === 'record') record = pre.set;
        if (!coversByEnumeration(record, from)) return false;
        // The server runs `to` now; commits acknowledged under `from` are not flushed anywhere new yet.
        if (!coversByEnumeration(record, to) || !coversByEnumeration(record, from)) return false;
        const waiting = decideSyncSet({ recorded: record, desired: to, takenAt: '0/1000000', flushed: none });
        if (waiting.kind === 'record' && !coversByEnumeration(waiting.set, from)) return false;
        const all = new Map(to.standbys.map((n) => [n, '0/1000000']));
        const post = decideSyncSet({ recorded: record, desired: to, takenAt: '0/1000000', flushed: all });
        const final = post.kind === 'record' ? post.set : record;
        return final.count === to.count && final.standbys.length === to.standbys.length;
      }),
      { numRuns: 2000 },
    );
  });
});

describe('the set in force while a new leader is pending', () => {
  it('keeps the oldest set in force through any number of leaders that failed before announcing', () => {
    const first = { count: 1, standbys: ['pg2', 'pg3'] };
    assert.deepEqual(syncSetInForce(first), first);
    assert.equal(syncSetInForce(null), null);
    const byPg2 = pendingSyncSet({ count: 1, standbys: ['pg1', 'pg3'] }, first);
    assert.deepEqual(syncSetInForce(byPg2), first);
    // pg2 failed before announcing; pg3 then won the key: pg1's set is still the one in force.
    const byPg3 = pendingSyncSet({ count: 1, standbys: ['pg1', 'pg2'] }, byPg2);
    assert.deepEqual(byPg3.replaces, first);
    assert.deepEqual(syncSetInForce(byPg3), first);
    assert.equal(syncSetInForce(pendingSyncSet(first, null)), null);
  });
});

describe('the set an announcement puts in force', () => {
  it('is what the leader recorded pending, from memory or, after its agent restarted, as read', () => {
    const own = { count: 1, standbys: ['pg1', 'pg3'], leader: 'pg2' };
    const pending = pendingSyncSet(own, { count: 1, standbys: ['pg2', 'pg3'], leader: 'pg1' });
    assert.deepEqual(syncSetToSettle(own, null), own);
    // The agent restarted between its promotion and its announcement: the record names it still.
    assert.deepEqual(syncSetToSettle(null, pending), own);
    assert.equal(syncSetToSettle(null, own), null, 'a set already in force is left as it is');
    assert.equal(syncSetToSettle(null, null), null);
  });
});
