import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_SERIES, SeriesRings } from '../../src/agent/dashboard/series-ring.js';

describe('the dashboard series rings', () => {
  it('keeps the last `capacity` samples of a series, oldest first, with gaps as null', () => {
    const r = new SeriesRings(3, 60_000);
    r.record('lag/n2', 1000, 5);
    r.record('lag/n2', 2000, null);
    r.record('lag/n2', 3000, 7);
    r.record('lag/n2', 4000, 8);
    assert.deepEqual(r.points(-Infinity, 4000), { 'lag/n2': { t: [2000, 3000, 4000], v: [null, 7, 8] } });
  });

  it('gives only what came after `since`, and nothing for a series without new samples', () => {
    const r = new SeriesRings(10, 60_000);
    for (const at of [1000, 2000, 3000]) r.record('a', at, at / 1000);
    r.record('b', 1500, 1);
    assert.deepEqual(r.points(2000, 3000), { a: { t: [3000], v: [3] } });
  });

  it('drops a series not written for a whole window, so that gone nodes make room', () => {
    const r = new SeriesRings(10, 60_000);
    r.record('gone', 1000, 1);
    r.record('kept', 50_000, 1);
    assert.deepEqual(Object.keys(r.points(-Infinity, 70_000)), ['kept']);
    assert.equal(r.bytes(), 10 * 2 * 8);
  });

  it(`keeps at most ${MAX_SERIES} series, within 1 MiB at 15 minutes of 1-second samples`, () => {
    const r = new SeriesRings(900, 900_000);
    for (let i = 0; i < MAX_SERIES + 5; i++) for (let s = 0; s < 1000; s++) r.record(`k${i}`, s * 1000, s);
    assert.equal(Object.keys(r.points(-Infinity, 1_000_000)).length, MAX_SERIES);
    assert.ok(r.bytes() <= 1024 * 1024, `${r.bytes()} bytes`);
  });
});
