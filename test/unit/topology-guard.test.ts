import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decidePromote } from '../../src/cluster/decide/decide-promote.js';
import { decideSwitchover } from '../../src/cluster/decide/decide-switchover.js';
import { planUp } from '../../src/cluster/decide/plan-up.js';
import { topologyGuard } from '../../src/cluster/decide/topology-guard.js';
import { roleOf } from '../../src/cluster/observe/observation.js';
import type { ClusterObservation, NodeObservation } from '../../src/cluster/observe/observation.js';
import { buildStatus } from '../../src/cluster/decide/status-report.js';
import { FACTS, observe, specOf } from '../helpers/observation-fixtures.js';

const spec = specOf(3);
const healthy = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-streaming' });

/** The same cluster seen from a machine that is none of pg3's: no disk facts for it. */
function remote(
  obs: ClusterObservation,
  name: string,
  server?: NodeObservation['server'],
): ClusterObservation {
  return {
    ...obs,
    nodes: obs.nodes.map((o) =>
      o.node.name === name
        ? { ...o, dataDir: { local: false }, ...(server === undefined ? {} : { server }) }
        : o,
    ),
  };
}

describe('topologyGuard', () => {
  it('lets a healthy local cluster through', () => {
    assert.equal(topologyGuard(healthy, { actsOn: 'all' }), null);
  });

  it('refuses two writable nodes unless the caller handles a split brain itself', () => {
    const split = observe(spec, { pg1: 'primary-up', pg2: 'primary-up', pg3: 'replica-streaming' });
    assert.equal(topologyGuard(split, { actsOn: 'all' })?.code, 'E_TWO_PRIMARIES');
    assert.match(topologyGuard(split, { actsOn: 'all' })?.reason ?? '', /^pg1 and pg2 both accept writes/);
    assert.equal(topologyGuard(split, { actsOn: 'all', allowSplitBrain: true }), null);
  });

  it('refuses an operation that acts on a node of another host, and names it', () => {
    const obs = remote(healthy, 'pg3');
    const r = topologyGuard(obs, { actsOn: 'all' });
    assert.equal(r?.code, 'E_NOT_LOCAL');
    assert.match(r?.reason ?? '', /^pg3 \(127\.0\.0\.1\) is on another host/);
    assert.equal(topologyGuard(obs, { actsOn: ['pg2'] }), null, 'rejoin of a local node may go on');
  });

  it('is what promote, switchover and up refuse with', () => {
    const obs = remote(healthy, 'pg3');
    const p = decidePromote(spec, obs, { target: 'pg2', auto: false, force: true });
    assert.equal(p.kind === 'refuse' && p.code, 'E_NOT_LOCAL');
    const s = decideSwitchover(spec, obs, 'pg2');
    assert.equal(s.kind === 'refuse' && s.code, 'E_NOT_LOCAL');
    const plan = planUp(spec, obs, FACTS, { create: true });
    assert.equal(plan.refusal?.code, 'E_NOT_LOCAL');
    assert.deepEqual(plan.steps, []);
  });
});

describe('a node on another host in status', () => {
  it('is watched from its answers alone: a streaming replica there is healthy', () => {
    const status = buildStatus(spec, remote(healthy, 'pg3'));
    assert.equal(status.healthy, true, status.warnings.join('; '));
    const pg3 = status.nodes.find((n) => n.name === 'pg3');
    assert.equal(pg3?.local, false);
    assert.equal(pg3?.role, 'replica');
    assert.equal(pg3?.state, 'streaming');
  });

  it('is unreachable, never guessed down, when it does not answer, and status says where to look', () => {
    const refused = { ok: false as const, error: 'connect ECONNREFUSED 127.0.0.1:5003' };
    const obs = remote(
      observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-down' }),
      'pg3',
      refused,
    );
    const pg3 = obs.nodes[2];
    assert.ok(pg3);
    assert.equal(roleOf(pg3), 'unreachable');
    const status = buildStatus(spec, obs);
    assert.equal(status.healthy, false);
    assert.ok(
      status.warnings.some((w) => /^pg3 \(127\.0\.0\.1:5003\) does not answer: .*on another host/.test(w)),
      status.warnings.join('\n'),
    );
    assert.ok(!status.warnings.some((w) => /pgrepl start/.test(w)), 'no advice to start what is not here');
  });
});
