import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compareCandidates, rankCandidates } from '../../src/cluster/decide/rank-candidates.js';
import type { Candidate } from '../../src/cluster/decide/rank-candidates.js';
import { formatLsn, lsnDiff, parseLsn } from '../../src/postgres/lsn.js';

const c = (
  name: string,
  healthy: boolean,
  position: string | null,
  replay: string | null,
  priority = 0,
): Candidate => ({
  name,
  problem: healthy ? null : 'its replay is paused',
  positionLsn: position,
  replayLsn: replay,
  priority,
});

const arbCandidate = fc.record({
  name: fc.constantFrom('pg1', 'pg2', 'pg3', 'pg4'),
  problem: fc.option(fc.constant('its replay is paused'), { nil: null }),
  positionLsn: fc.option(fc.bigInt({ min: 0n, max: 2n ** 40n }).map(formatLsn), { nil: null }),
  replayLsn: fc.option(fc.bigInt({ min: 0n, max: 2n ** 40n }).map(formatLsn), { nil: null }),
  priority: fc.integer({ min: 0, max: 3 }),
});

describe('ranking failover candidates', () => {
  it('puts unhealthy last, then prefers more WAL held, then replayed, then spec order, then name', () => {
    const ranked = rankCandidates([
      c('sick', false, '9/0', '9/0'),
      c('behind', true, '1/0', '1/0'),
      c('slowreplay', true, '2/0', '1/0'),
      c('best', true, '2/0', '2/0', 2),
      c('besttoo', true, '2/0', '2/0', 1),
    ]);
    assert.deepEqual(
      ranked.map((x) => x.name),
      ['besttoo', 'best', 'slowreplay', 'behind', 'sick'],
    );
  });

  it('is a total order: antisymmetric and transitive (property)', () => {
    fc.assert(
      fc.property(arbCandidate, arbCandidate, arbCandidate, (a, b, d) => {
        assert.equal(Math.sign(compareCandidates(a, b)) + Math.sign(compareCandidates(b, a)), 0);
        if (compareCandidates(a, b) <= 0 && compareCandidates(b, d) <= 0)
          assert.ok(compareCandidates(a, d) <= 0);
      }),
    );
  });

  it('never ranks a healthy candidate below an unhealthy one, nor one that holds less WAL above one that holds more (property)', () => {
    fc.assert(
      fc.property(fc.array(arbCandidate, { minLength: 1, maxLength: 6 }), (cs) => {
        const ranked = rankCandidates(cs);
        for (let i = 1; i < ranked.length; i++) {
          const [prev, cur] = [ranked[i - 1] as Candidate, ranked[i] as Candidate];
          if (prev.problem !== null) assert.notEqual(cur.problem, null);
          if ((prev.problem === null) === (cur.problem === null) && prev.positionLsn && cur.positionLsn) {
            assert.ok(parseLsn(prev.positionLsn) >= parseLsn(cur.positionLsn));
          }
        }
      }),
    );
  });

  it('parses and formats LSNs as PostgreSQL prints them', () => {
    assert.equal(parseLsn('16/B374D848'), (0x16n << 32n) | 0xb374d848n);
    assert.equal(formatLsn(parseLsn('16/B374D848')), '16/B374D848');
    assert.equal(lsnDiff('0/3000100', '0/3000000'), 256);
    assert.equal(lsnDiff(null, '0/1'), null);
    assert.throws(() => parseLsn('nope'), /not an LSN/);
  });
});
