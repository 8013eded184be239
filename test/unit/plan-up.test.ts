import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { planUp } from '../../src/cluster/decide/plan-up.js';
import type { Step } from '../../src/cluster/decide/plan-step.js';
import { localDir } from '../../src/cluster/observe/observation.js';
import { FACTS, observe, patchServer, specOf, withFiles } from '../helpers/observation-fixtures.js';
import type { NodeShape } from '../helpers/observation-fixtures.js';

const kinds = (steps: readonly Step[]) => steps.map((s) => `${s.kind}:${'slot' in s ? s.slot : s.node}`);

describe('planUp', () => {
  const spec = specOf(3);

  it('creates a cluster from nothing: primary, role, slots before clones, then waits', () => {
    const plan = planUp(spec, observe(spec, {}), FACTS, { create: true });
    assert.equal(plan.refusal, null);
    assert.equal(plan.primary, 'pg1');
    assert.deepEqual(kinds(plan.steps), [
      'init-primary:pg1',
      'ensure-replication-role:pg1',
      'create-slot:pg2',
      'create-slot:pg3',
      'clone:pg2',
      'clone:pg3',
      'start:pg2',
      'start:pg3',
      'wait-streaming:pg2',
      'wait-streaming:pg3',
    ]);
  });

  it('plans nothing for a cluster that matches the spec', () => {
    const obs = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-streaming' });
    const plan = planUp(spec, obs, FACTS, { create: true });
    assert.deepEqual(plan.steps, []);
    assert.deepEqual(plan.notes, []);
  });

  it('starts a stopped primary first, then a stopped replica, and waits for it', () => {
    const obs = observe(spec, { pg1: 'primary-down', pg2: 'replica-down', pg3: 'replica-streaming' });
    const plan = planUp(spec, obs, FACTS, { create: true });
    assert.deepEqual(kinds(plan.steps), [
      'start:pg1',
      'ensure-replication-role:pg1',
      'create-slot:pg2',
      'start:pg2',
      'create-slot:pg3',
      'wait-streaming:pg2',
      'wait-streaming:pg3',
    ]);
  });

  it('follows the observed primary, not the spec order', () => {
    const obs = observe(
      spec,
      { pg1: 'replica-streaming', pg2: 'primary-up', pg3: 'replica-streaming' },
      'pg2',
    );
    const plan = planUp(spec, obs, FACTS, { create: true });
    assert.equal(plan.primary, 'pg2');
    assert.deepEqual(plan.steps, []);
  });

  it('refuses two writable primaries', () => {
    const obs = observe(spec, { pg1: 'primary-up', pg2: 'primary-up', pg3: 'replica-streaming' });
    const plan = planUp(spec, obs, FACTS, { create: true });
    assert.equal(plan.refusal?.code, 'E_TWO_PRIMARIES');
    assert.match(plan.refusal?.reason ?? '', /pg1 and pg2 both accept writes/);
    assert.deepEqual(plan.steps, []);
  });

  it('refuses to start either of two stopped primaries', () => {
    const obs = observe(spec, { pg1: 'primary-down', pg2: 'primary-down' });
    assert.equal(planUp(spec, obs, FACTS, { create: true }).refusal?.code, 'E_TWO_PRIMARIES');
  });

  it('leaves a stopped former primary alone while another primary runs', () => {
    const obs = observe(spec, { pg1: 'primary-down', pg2: 'primary-up', pg3: 'replica-streaming' }, 'pg2');
    const plan = planUp(spec, obs, FACTS, { create: true });
    assert.equal(plan.refusal, null);
    assert.ok(!plan.steps.some((s) => s.node === 'pg1'), kinds(plan.steps).join());
    assert.match(plan.notes.join('\n'), /pg1 holds a primary's data but pg2 is the primary/);
  });

  it('refuses when the only possible primary runs but does not answer', () => {
    const obs = observe(spec, { pg1: 'unreachable', pg2: 'replica-streaming' });
    assert.equal(planUp(spec, obs, FACTS, { create: true }).refusal?.code, 'E_PRIMARY_UNREACHABLE');
  });

  it('refuses when only replicas have data', () => {
    const obs = observe(spec, { pg2: 'replica-down', pg3: 'replica-down' });
    assert.equal(planUp(spec, obs, FACTS, { create: true }).refusal?.code, 'E_NO_PRIMARY');
  });

  it('refuses a data directory with foreign files', () => {
    const obs = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming' });
    const pg3 = obs.nodes[2];
    assert.ok(pg3);
    const foreign = {
      ...obs,
      nodes: [
        obs.nodes[0],
        obs.nodes[1],
        { ...pg3, dataDir: { ...pg3.dataDir, exists: true, foreignContent: true, createdByPgrepl: false } },
      ],
    };
    const plan = planUp(spec, foreign as typeof obs, FACTS, { create: true });
    assert.equal(plan.refusal?.code, 'E_DATA_DIR_FOREIGN');
  });

  it('rewrites a stale config and lets the handler reload', () => {
    const obs = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-streaming' });
    const pg2 = obs.nodes[1];
    assert.ok(pg2);
    const stale = {
      ...obs,
      nodes: [
        obs.nodes[0],
        { ...pg2, dataDir: withFiles(pg2, { pgHba: 'host all all 0.0.0.0/0 trust\n' }) },
        obs.nodes[2],
      ],
    };
    const plan = planUp(spec, stale as typeof obs, FACTS, { create: true });
    assert.deepEqual(kinds(plan.steps), ['write-config:pg2']);
  });

  it('plans a restart for a setting that takes effect only at one, replicas before the primary, then waits for them to stream again (issue 10.6)', () => {
    const obs = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-streaming' });
    const bigger = { ...spec, settings: { ...spec.settings, shared_buffers: '256MB', work_mem: '8MB' } };
    const plan = planUp(bigger, obs, FACTS, { create: true });
    assert.deepEqual(kinds(plan.steps), [
      'write-config:pg1',
      'write-config:pg2',
      'write-config:pg3',
      'restart:pg2',
      'restart:pg3',
      'restart:pg1',
      'wait-streaming:pg2',
      'wait-streaming:pg3',
    ]);
    const restart = plan.steps.find((s) => s.kind === 'restart');
    assert.equal(restart?.reason, 'shared_buffers changes only at a restart', 'work_mem needs only a reload');
    const reloadOnly = planUp({ ...spec, settings: { ...spec.settings, work_mem: '8MB' } }, obs, FACTS, {
      create: true,
    });
    assert.deepEqual(kinds(reloadOnly.steps), ['write-config:pg1', 'write-config:pg2', 'write-config:pg3']);
  });

  it('restarts the primary through a switchover to a streaming replica when asked (a publication’s wal_level, issue 30)', () => {
    const obs = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-streaming' });
    const logical = { ...spec, settings: { ...spec.settings, wal_level: 'logical' } };
    const plan = planUp(logical, obs, FACTS, { create: true, restartPrimary: 'switchover' });
    assert.deepEqual(kinds(plan.steps), [
      'write-config:pg1',
      'write-config:pg2',
      'write-config:pg3',
      'restart:pg2',
      'restart:pg3',
      'switchover:pg1',
    ]);
    const moved = plan.steps.find((s) => s.kind === 'switchover');
    assert.equal(moved?.kind === 'switchover' ? moved.to : null, 'pg2');
    assert.match(moved?.reason ?? '', /^wal_level changes only at a restart; through a switchover/);
    const one = specOf(1);
    const inPlace = planUp(
      { ...one, settings: { ...one.settings, wal_level: 'logical' } },
      observe(one, { pg1: 'primary-up' }),
      FACTS,
      { create: true, restartPrimary: 'switchover' },
    );
    assert.deepEqual(kinds(inPlace.steps), ['write-config:pg1', 'restart:pg1'], 'no replica: in place');
  });

  it('leaves stopped, and says why, a replica whose slot lost the WAL it needs (issue 11)', () => {
    const obs = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-down' });
    const lost = patchServer(obs, 'pg1', (a) => ({
      ...a,
      slots: a.slots.map((sl) => (sl.name === 'pg3' ? { ...sl, walStatus: 'lost' } : sl)),
    }));
    const plan = planUp(spec, lost, FACTS, { create: false });
    assert.deepEqual(kinds(plan.steps), []);
    assert.ok(
      plan.notes.some((n) =>
        /^pg3 stays stopped: its slot on pg1 lost WAL it needs.*pgrepl rejoin pg3/.test(n),
      ),
    );
  });

  it('start (create: false) never initialises or clones', () => {
    const plan = planUp(spec, observe(spec, { pg1: 'primary-down' }), FACTS, { create: false });
    assert.deepEqual(kinds(plan.steps), ['start:pg1', 'ensure-replication-role:pg1']);
    assert.equal(plan.notes.length, 2);
  });

  it('never plans to start or create a second primary (property)', () => {
    const shapes: NodeShape[] = [
      'absent',
      'primary-up',
      'primary-down',
      'replica-streaming',
      'replica-not-streaming',
      'replica-down',
      'unreachable',
    ];
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...shapes), { minLength: 3, maxLength: 3 }),
        fc.boolean(),
        (s, create) => {
          const obs = observe(spec, {
            pg1: s[0] as NodeShape,
            pg2: s[1] as NodeShape,
            pg3: s[2] as NodeShape,
          });
          const plan = planUp(spec, obs, FACTS, { create });
          if (plan.refusal) return plan.steps.length === 0;
          const primaryLike = obs.nodes
            .filter((o) => localDir(o)?.initialized && !localDir(o)?.standbySignal)
            .map((o) => o.node.name);
          const writableAfter = new Set(
            obs.nodes.filter((o) => o.server?.ok && !o.server.instance.inRecovery).map((o) => o.node.name),
          );
          for (const st of plan.steps) {
            if (st.kind === 'init-primary' && primaryLike.length > 0) return false;
            if ((st.kind === 'start' || st.kind === 'init-primary') && primaryLike.includes(st.node))
              writableAfter.add(st.node);
            if (st.kind === 'init-primary') writableAfter.add(st.node);
          }
          return writableAfter.size <= 1;
        },
      ),
    );
  });
});
