import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { watchStaleness } from '../../src/agent/watch-staleness.js';

describe('a watch that stopped delivering (issue 31, defect 5)', () => {
  it('is stale once reads have been ahead of it for longer than the limit, not before', () => {
    const behind = { readRevision: 12, deliveredRevision: 10, limitMs: 2000 };
    const first = watchStaleness({ ...behind, behindSince: null, now: 5000 });
    assert.deepEqual(first, { behindSince: 5000, stale: false });
    assert.equal(watchStaleness({ ...behind, behindSince: 5000, now: 7000 }).stale, false);
    assert.equal(watchStaleness({ ...behind, behindSince: 5000, now: 7001 }).stale, true);
  });

  it('is live again as soon as it delivered what the reads saw', () => {
    assert.deepEqual(
      watchStaleness({
        readRevision: 12,
        deliveredRevision: 12,
        behindSince: 5000,
        now: 9000,
        limitMs: 2000,
      }),
      { behindSince: null, stale: false },
    );
  });
});
