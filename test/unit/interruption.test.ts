import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildStatus } from '../../src/cluster/decide/status-report.js';
import { observe, specOf } from '../helpers/observation-fixtures.js';

const spec = specOf(2);

describe('status while an operation is interrupted', () => {
  const obs = observe(spec, { pg1: 'primary-up', pg2: 'replica-down' });
  const down = buildStatus(spec, obs);

  it('says how to start a node that is down', () => {
    assert.ok(
      down.warnings.some((w) => w.endsWith('`pgrepl start pg2` starts it')),
      down.warnings.join('\n'),
    );
  });

  it('points at resume instead, since start is refused while the journal is there (issue 11)', () => {
    const journal = {
      op: 'switchover' as const,
      resume: ['switchover', '--to', 'pg2'],
      facts: {},
      pid: 1,
      startedAt: '2026-12-01T00:00:00.000Z',
      step: 'promote pg2',
      done: [],
    };
    const s = buildStatus(spec, obs, journal);
    assert.equal(s.healthy, false);
    assert.match(
      s.warnings[0] ?? '',
      /^`pgrepl switchover --to pg2` was interrupted during step "promote pg2"/,
    );
    assert.ok(!s.warnings.some((w) => /pgrepl start/.test(w)), s.warnings.join('\n'));
    assert.ok(s.warnings.some((w) => w.endsWith('`pgrepl resume` first (start is refused until then)')));
  });
});
