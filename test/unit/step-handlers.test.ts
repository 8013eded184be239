import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { STEP_HANDLERS } from '../../src/cluster/operations/apply-plan.js';
import { planUp } from '../../src/cluster/decide/plan-up.js';
import { planCerts } from '../../src/cluster/decide/plan-certs.js';
import { stanzaSteps } from '../../src/cluster/decide/decide-stanza.js';
import { decidePublications } from '../../src/cluster/decide/decide-logical.js';
import { FACTS, observe, specOf } from '../helpers/observation-fixtures.js';
import type { NodeShape } from '../helpers/observation-fixtures.js';

describe('transitions', () => {
  it('has exactly one handler per step kind the planner emits, over every combination of node states', () => {
    const spec = specOf(3);
    const shapes: NodeShape[] = [
      'absent',
      'primary-up',
      'primary-down',
      'primary-pending-restart',
      'replica-streaming',
      'replica-stale-config',
      'replica-not-streaming',
      'replica-down',
      'unreachable',
    ];
    const emitted = new Set<string>();
    for (const a of shapes)
      for (const b of shapes)
        for (const c of shapes)
          for (const create of [true, false]) {
            const plan = planUp(spec, observe(spec, { pg1: a, pg2: b, pg3: c }), FACTS, { create });
            for (const s of plan.steps) emitted.add(s.kind);
          }
    // A primary's restart through a switchover, when asked (a publication's wal_level).
    const logical = { ...spec, settings: { ...spec.settings, wal_level: 'logical' } };
    const streaming = observe(spec, {
      pg1: 'primary-up',
      pg2: 'replica-streaming',
      pg3: 'replica-streaming',
    });
    for (const s of planUp(logical, streaming, FACTS, { create: true, restartPrimary: 'switchover' }).steps)
      emitted.add(s.kind);
    // The certificates of tls: auto are planned apart, before planUp's steps.
    const auto = { ...spec, tls: 'auto' as const };
    for (const s of planCerts(auto, { ca: { present: false }, caKey: false, nodes: {} }, new Set(['pg1']), 0))
      emitted.add(s.kind);
    // The backup stanza is planned apart too, after them.
    for (const s of stanzaSteps({ kind: 'create', reason: 'none yet' }, 'pg1', { create: true }))
      emitted.add(s.kind);
    // And logical replication's, last.
    const pub = { name: 'p', database: 'postgres', tables: 'all' as const, allow: [], skipChecks: [] };
    for (const s of decidePublications('pg1', [pub], []).steps) emitted.add(s.kind);
    // Every emitted kind has a handler, and every handler is reachable from some observation.
    assert.deepEqual([...emitted].sort(), Object.keys(STEP_HANDLERS).sort());
  });
});
