import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideSetMode } from '../../src/cluster/decide/decide-set-mode.js';
import { observe, specOf } from '../helpers/observation-fixtures.js';

const spec = specOf(3);

describe('decideSetMode', () => {
  const oneStreams = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-down' });

  it('refuses more confirming replicas than stream, since every commit would hang', () => {
    const d = decideSetMode(oneStreams, { mode: 'quorum', count: 2, force: false });
    assert.equal(d.kind === 'refuse' && d.code, 'E_TOO_FEW_REPLICAS');
    assert.match(d.reason, /^quorum --count 2 needs 2 streaming replica\(s\) and 1 stream now/);
  });

  it('accepts it with --force, and says that fewer stream', () => {
    const d = decideSetMode(oneStreams, { mode: 'quorum', count: 2, force: true });
    assert.equal(d.kind, 'set');
    assert.match(d.reason, /forced: fewer stream now/);
  });

  it('always allows async, and records count 1 for it', () => {
    const none = observe(spec, { pg1: 'primary-up', pg2: 'replica-down', pg3: 'replica-down' });
    assert.deepEqual(decideSetMode(none, { mode: 'async', count: 3, force: false }), {
      kind: 'set',
      mode: 'async',
      count: 1,
      reason: 'commits no longer wait for a replica',
    });
  });

  it('refuses during a split brain like every other decision', () => {
    const split = observe(spec, { pg1: 'primary-up', pg2: 'primary-up', pg3: 'replica-streaming' });
    assert.equal(decideSetMode(split, { mode: 'async', count: 1, force: true }).kind, 'refuse');
  });
});
