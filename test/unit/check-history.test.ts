import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkHistory } from '../helpers/check-history.js';
import type { WriteOp } from '../helpers/writer.js';

const ok = (id: number, at: number): WriteOp => ({ id, invokedAt: at, completedAt: at + 5, outcome: 'ok' });
const probe = (node: string, sentAt: number, ackAt = sentAt + 2) => ({ node, sentAt, ackAt });

describe('the history checker of the fault runs (issue 13)', () => {
  it('finds an acknowledged write missing from the final table, and allows an unknown one either way', () => {
    const v = checkHistory(
      {
        writes: [
          ok(1, 0),
          ok(2, 10),
          { id: 3, invokedAt: 20, completedAt: 900, outcome: 'unknown' },
          ok(4, 1000),
        ],
        probes: [],
        faults: [],
      },
      new Set([1, 3, 4]),
    );
    assert.deepEqual([v.acknowledged, v.lost, v.unknownCommitted], [3, [2], 1]);
  });

  it('in async mode, allows the loss maximumLagOnFailover and the fencing window permit, and no more', () => {
    // One write every 100 ms, 1 kB of WAL each; the old primary's last 5 writes are lost.
    const at = (i: number) => ({ ...ok(i, i * 100), lsn: `0/${(0x100000 + i * 1024).toString(16)}` });
    const writes = Array.from({ length: 30 }, (_, i) => at(i + 1));
    const committed = new Set(writes.filter((w) => w.id <= 25).map((w) => w.id));
    const h = { writes, probes: [], faults: [] };
    const window = { maxLagBytes: 0, windowMs: 1000 };
    const v = checkHistory(h, committed, window);
    assert.deepEqual(v.lost, [26, 27, 28, 29, 30]);
    assert.deepEqual(v.lostBeyondBound, [], 'all lost within the last second before the fence');
    assert.equal(v.lostWalBytes, 4 * 1024);
    const short = checkHistory(h, committed, { maxLagBytes: 1024, windowMs: 200 });
    assert.deepEqual(
      short.lostBeyondBound,
      [26],
      '29, 30 in the window; 28 its floor, 27 within the lag of it; 26 beyond',
    );
    assert.deepEqual(checkHistory(h, committed).lostBeyondBound, v.lost, 'sync and quorum modes allow none');
  });

  it('passes a clean failover: pg1 took writes, then pg2 alone', () => {
    const v = checkHistory(
      {
        writes: [],
        probes: [probe('pg1', 0), probe('pg1', 100), probe('pg2', 1500), probe('pg2', 1600)],
        faults: [],
      },
      new Set(),
    );
    assert.deepEqual(v.splitBrain, []);
  });

  it('finds a node that took writes again after another had (A, B, A)', () => {
    const v = checkHistory(
      { writes: [], probes: [probe('pg1', 0), probe('pg2', 1500), probe('pg1', 1600)], faults: [] },
      new Set(),
    );
    assert.equal(v.splitBrain.length, 1);
    assert.deepEqual(v.splitBrain[0]?.nodes, ['pg1', 'pg2']);
  });

  it('measures the longest time without an acknowledged write from each fault on', () => {
    const v = checkHistory(
      {
        writes: [ok(1, 0), ok(2, 900), ok(3, 2900), ok(4, 2950), ok(5, 4000)],
        probes: [],
        faults: [
          { at: 1000, what: 'kill' },
          { at: 9000, what: 'x' },
        ],
      },
      new Set([1, 2, 3, 4, 5]),
    );
    // From the last acknowledgement before the fault (905) to the next (2905), not from the fault.
    assert.deepEqual(v.writeGapMs, [2000, null]);
  });
});
