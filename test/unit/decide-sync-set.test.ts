import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideSyncSet } from '../../src/cluster/decide/decide-sync-set.js';

const recorded = { count: 1, standbys: ['pg2', 'pg3'] };
const flushed = (m: Record<string, string | null>) => new Map(Object.entries(m));

describe('which synchronous set the leader records', () => {
  it('keeps the record that matches the spec, whatever the order', () => {
    const d = decideSyncSet({
      recorded,
      desired: { count: 1, standbys: ['pg3', 'pg2'] },
      narrowedAt: null,
      flushed: flushed({}),
    });
    assert.equal(d.kind, 'keep');
  });

  it('records a wider set at once', () => {
    const d = decideSyncSet({
      recorded,
      desired: { count: 1, standbys: ['pg2', 'pg3', 'pg4'] },
      narrowedAt: null,
      flushed: flushed({}),
    });
    assert.equal(d.kind, 'record');
    assert.equal(
      decideSyncSet({ recorded: null, desired: recorded, narrowedAt: null, flushed: flushed({}) }).kind,
      'record',
    );
  });

  it('records a narrower set only once enough of it flushed past where the leader took it', () => {
    const desired = { count: 1, standbys: ['pg3'] };
    const at = '0/5000000';
    assert.equal(
      decideSyncSet({ recorded, desired, narrowedAt: null, flushed: flushed({ pg3: '0/6000000' }) }).kind,
      'wait',
    );
    const behind = decideSyncSet({
      recorded,
      desired,
      narrowedAt: at,
      flushed: flushed({ pg3: '0/4FFFFFF', pg2: '0/9000000' }),
    });
    assert.equal(behind.kind, 'wait', 'the removed node’s position does not count');
    assert.match(behind.reason, /only 0 of the 1/);
    const past = decideSyncSet({ recorded, desired, narrowedAt: at, flushed: flushed({ pg3: '0/5000000' }) });
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
      narrowedAt: at,
      flushed: flushed({ pg2: '0/5000000', pg3: null }),
    });
    assert.equal(one.kind, 'wait');
    const two = decideSyncSet({
      recorded: wide,
      desired,
      narrowedAt: at,
      flushed: flushed({ pg2: '0/5000000', pg4: '0/5100000' }),
    });
    assert.equal(two.kind, 'record');
  });
});
