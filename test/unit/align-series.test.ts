import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { alignLines, appendLine } from '../../src/agent/dashboard/align-series.js';

describe("the page's chart data", () => {
  it('puts lines sampled by different agents on one axis of seconds, with gaps where one has none', () => {
    const a = { t: [10_100, 11_050, 12_020], v: [1, 2, 3] };
    const b = { t: [10_900, 12_700], v: [7, null] };
    assert.deepEqual(alignLines([a, b], 13_000, 60_000), [
      [10, 11, 12],
      [1, 2, 3],
      [7, null, null],
    ]);
  });

  it('keeps only the window before now', () => {
    assert.deepEqual(alignLines([{ t: [1000, 5000], v: [1, 2] }], 6000, 2000), [[5], [2]]);
  });

  it('appends only samples past the newest (a stream overlapping a full read) and forgets the old', () => {
    const line = { t: [1000, 2000], v: [1, 2] };
    assert.deepEqual(appendLine(line, { t: [2000, 3000], v: [9, 3] }, 3000, 60_000), {
      t: [1000, 2000, 3000],
      v: [1, 2, 3],
    });
    assert.deepEqual(appendLine(line, { t: [4000], v: [4] }, 4000, 2500), { t: [2000, 4000], v: [2, 4] });
  });
});
