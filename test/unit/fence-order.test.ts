import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeFenceOrder, encodeFenceOrder, FENCE_ORDER_BYTES } from '../../src/agent/fence-order.js';

test('a fence order reads back as written, armed or not, always in the same number of bytes', () => {
  for (const o of [
    { until: 1_764_800_000_123, pid: 4242 },
    { until: null, pid: null },
  ]) {
    const bytes = encodeFenceOrder(o);
    assert.equal(bytes.length, FENCE_ORDER_BYTES);
    assert.deepEqual(decodeFenceOrder(bytes.toString('latin1')), o);
  }
});

test('a write half done is no order: every mix of an old and a new order is refused or is one of them', () => {
  const old = encodeFenceOrder({ until: 1_764_800_000_123, pid: 4242 }).toString('latin1');
  const next = encodeFenceOrder({ until: 1_764_800_003_987, pid: 4242 }).toString('latin1');
  for (let cut = 0; cut <= FENCE_ORDER_BYTES; cut++) {
    const torn = next.slice(0, cut) + old.slice(cut);
    const o = decodeFenceOrder(torn);
    if (o !== null)
      assert.ok(
        torn === old || torn === next || o.until === 1_764_800_000_123 || o.until === 1_764_800_003_987,
        `cut at ${cut} read as ${JSON.stringify(o)}`,
      );
  }
  assert.equal(decodeFenceOrder(next.slice(0, 20)), null);
  assert.equal(decodeFenceOrder(''), null);
  assert.equal(decodeFenceOrder('{"until":1764800000123,"pid":4242}'), null, 'no check: not ours');
});
