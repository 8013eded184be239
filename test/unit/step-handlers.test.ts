import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { copiesFiles, STEP_HANDLERS } from '../../src/cluster/operations/apply-plan.js';
import type { ClusterContext } from '../../src/cluster/context/cluster-context.js';
import { pgBin } from '../helpers/test-cluster.js';
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

describe('a clone without pg_basebackup (issue 30)', () => {
  const bare = mkdtempSync(join(tmpdir(), 'pgrepl-bare-bin-'));
  after(() => rmSync(bare, { recursive: true, force: true }));
  const ctxOf = (binDir: string, major: number, local: string[]) =>
    ({ env: { bins: { binDir, major } }, localNodes: new Set(local) }) as unknown as ClusterContext;
  const clone = { kind: 'clone', node: 'pg2', upstream: 'pg1', reason: 'new' } as const;

  it('copies the upstream’s files when the installation lacks pg_basebackup and the upstream is on this machine', () => {
    assert.equal(copiesFiles(ctxOf(bare, 17, ['pg1', 'pg2']), clone), true);
  });

  it('does not where it cannot: an upstream on another host, a version before pg_backup_start, a restore, an installation that has pg_basebackup', () => {
    assert.equal(copiesFiles(ctxOf(bare, 17, ['pg2']), clone), false, 'the upstream is elsewhere');
    assert.equal(copiesFiles(ctxOf(bare, 14, ['pg1', 'pg2']), clone), false, 'no pg_backup_start');
    assert.equal(
      copiesFiles(ctxOf(bare, 17, ['pg1', 'pg2']), { ...clone, source: 'repository' }),
      false,
      'restored from the repository',
    );
    assert.equal(copiesFiles(ctxOf(pgBin(), 15, ['pg1', 'pg2']), clone), false, 'pg_basebackup is there');
  });
});
