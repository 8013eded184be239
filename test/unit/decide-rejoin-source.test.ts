import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideRejoinSource } from '../../src/cluster/decide/decide-rejoin-source.js';
import { observe, specOf } from '../helpers/observation-fixtures.js';

describe('decideRejoinSource (issue 9.7)', () => {
  const spec = specOf(3);
  const split = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'primary-up' });

  it('refuses to pick a survivor of a split brain by itself', () => {
    const d = decideRejoinSource(split, 'pg3', undefined);
    assert.equal(d.kind === 'refuse' && d.code, 'E_TWO_PRIMARIES');
    assert.match(d.kind === 'refuse' ? d.reason : '', /pgrepl rejoin pg3 --keep pg1/);
    assert.deepEqual(d.kind === 'refuse' && d.sides, ['pg1', 'pg3']);
  });

  it('with --keep rejoins only the other writable node, to the one kept', () => {
    const kept = decideRejoinSource(split, 'pg3', 'pg1');
    assert.equal(kept.kind === 'rejoin' && kept.primary, 'pg1');
    assert.equal(decideRejoinSource(split, 'pg1', 'pg3').kind === 'rejoin', true);
    assert.equal(decideRejoinSource(split, 'pg2', 'pg1').kind, 'refuse');
    assert.equal(decideRejoinSource(split, 'pg3', 'pg3').kind, 'refuse');
    assert.equal(decideRejoinSource(split, 'pg3', 'pg2').kind, 'refuse');
  });

  it('rejoins to the one primary, and refuses the primary itself or a --keep that names another', () => {
    const one = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-down' });
    const d = decideRejoinSource(one, 'pg3', undefined);
    assert.equal(d.kind === 'rejoin' && d.primary, 'pg1');
    assert.equal(decideRejoinSource(one, 'pg1', undefined).kind, 'refuse');
    assert.equal(decideRejoinSource(one, 'pg3', 'pg2').kind, 'refuse');
    assert.equal(decideRejoinSource(observe(spec, { pg1: 'primary-down' }), 'pg2', undefined).kind, 'refuse');
  });
});
