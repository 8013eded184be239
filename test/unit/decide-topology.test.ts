import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decidePromote } from '../../src/cluster/decide/decide-promote.js';
import { decideSwitchover } from '../../src/cluster/decide/decide-switchover.js';
import { planUp } from '../../src/cluster/decide/plan-up.js';
import { replayCaughtUp } from '../../src/cluster/actions/topology-actions.js';
import type { ClusterObservation, ServerAnswer } from '../../src/cluster/observe/observation.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { FACTS, observe, specOf, patchServer } from '../helpers/observation-fixtures.js';

const spec = specOf(3);

const patch = patchServer;

const received =
  (lsn: string) =>
  (s: ServerAnswer): ServerAnswer => ({ ...s, instance: { ...s.instance, receiveLsn: lsn, replayLsn: lsn } });

describe('decidePromote', () => {
  const primaryGone = observe(spec, {
    pg1: 'primary-down',
    pg2: 'replica-streaming',
    pg3: 'replica-streaming',
  });

  it('refuses while the primary answers, pointing at switchover', () => {
    const d = decidePromote(
      spec,
      observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-streaming' }),
      {
        target: 'pg2',
        auto: false,
        force: false,
      },
    );
    assert.equal(d.kind, 'refuse');
    assert.match(
      d.kind === 'refuse' ? d.reason : '',
      /pg1 is the primary and accepts writes.*pgrepl switchover --to pg2/,
    );
  });

  it('with --force fences the answering primary first', () => {
    const d = decidePromote(
      spec,
      observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-streaming' }),
      {
        target: 'pg2',
        auto: false,
        force: true,
      },
    );
    assert.equal(d.kind, 'promote');
    assert.ok(d.kind === 'promote' && d.fence && d.oldPrimary === 'pg1');
  });

  it('needs no fence for a primary that is down, and re-points the other replica', () => {
    const d = decidePromote(spec, primaryGone, { target: undefined, auto: true, force: false });
    assert.deepEqual(d.kind === 'promote' && { target: d.target, fence: d.fence, followers: d.followers }, {
      target: 'pg2',
      fence: false,
      followers: ['pg3'],
    });
  });

  it('--auto goes by failoverPriority among equals, and never picks a node marked never to be promoted, as the agents (issue 31)', () => {
    const ranked = parseSpec(
      'cluster: t\nstateDir: /s\nnodes:\n  - { name: pg1, port: 5001, dataDir: /d/pg1 }\n' +
        '  - { name: pg2, port: 5002, dataDir: /d/pg2 }\n  - { name: pg3, port: 5003, dataDir: /d/pg3, failoverPriority: 5 }\n',
      'test.yaml',
      '/',
    );
    const gone = observe(ranked, { pg1: 'primary-down', pg2: 'replica-streaming', pg3: 'replica-streaming' });
    const d = decidePromote(ranked, gone, { target: undefined, auto: true, force: false });
    assert.equal(d.kind === 'promote' && d.target, 'pg3', 'the higher failoverPriority');
    const never = parseSpec(
      'cluster: t\nstateDir: /s\nnodes:\n  - { name: pg1, port: 5001, dataDir: /d/pg1 }\n' +
        '  - { name: pg2, port: 5002, dataDir: /d/pg2, noFailover: true }\n  - { name: pg3, port: 5003, dataDir: /d/pg3 }\n',
      'test.yaml',
      '/',
    );
    const picked = decidePromote(
      never,
      observe(never, { pg1: 'primary-down', pg2: 'replica-streaming', pg3: 'replica-streaming' }),
      { target: undefined, auto: true, force: false },
    );
    assert.equal(picked.kind === 'promote' && picked.target, 'pg3');
    const candidates = picked.kind === 'promote' ? picked.candidates : [];
    assert.match(candidates.find((c) => c.name === 'pg2')?.problem ?? '', /marked never to be promoted/);
  });

  it('--auto picks the replica that holds the most WAL', () => {
    const d = decidePromote(spec, patch(primaryGone, 'pg3', received('0/3000100')), {
      target: undefined,
      auto: true,
      force: false,
    });
    assert.equal(d.kind === 'promote' && d.target, 'pg3');
    assert.match(d.kind === 'promote' ? d.reason : '', /healthy replica with the most WAL \(0\/3000100\)/);
  });

  it('refuses a named replica that holds less WAL than another, unless forced', () => {
    const obs = patch(primaryGone, 'pg3', received('0/3000100'));
    const d = decidePromote(spec, obs, { target: 'pg2', auto: false, force: false });
    assert.match(
      d.kind === 'refuse' ? d.reason : '',
      /pg2 has less WAL \(0\/3000000\) than pg3 \(0\/3000100\)/,
    );
    assert.equal(decidePromote(spec, obs, { target: 'pg2', auto: false, force: true }).kind, 'promote');
  });

  // Issue 9.12: right after its receiver starts, a replica reports the segment boundary it streams
  // from as received, behind what it replayed from its own pg_wal.
  it('takes a replica that replayed past what it reports received as holding what it replayed (issue 9.12)', () => {
    const restarted = (s: ServerAnswer): ServerAnswer => ({
      ...s,
      instance: { ...s.instance, receiveLsn: '0/3000000', replayLsn: '0/3000190' },
    });
    const obs = patch(patch(primaryGone, 'pg2', restarted), 'pg3', received('0/3000190'));
    const named = decidePromote(spec, obs, { target: 'pg2', auto: false, force: false });
    assert.equal(named.kind, 'promote', named.kind === 'refuse' ? named.reason : '');
    const auto = decidePromote(spec, obs, { target: undefined, auto: true, force: false });
    assert.equal(auto.kind === 'promote' && auto.candidates[0]?.positionLsn, '0/3000190');
  });

  // Issue 9.2: health comes from what the replicas report.
  it('ranks a replica whose replay is paused last, and refuses it by name unless forced (issue 9.2)', () => {
    const paused = (s: ServerAnswer): ServerAnswer => ({
      ...s,
      instance: { ...s.instance, replayPaused: true },
    });
    const obs = patch(primaryGone, 'pg2', paused);
    const auto = decidePromote(spec, obs, { target: undefined, auto: true, force: false });
    assert.equal(auto.kind === 'promote' && auto.target, 'pg3');
    assert.match(auto.kind === 'promote' ? (auto.candidates[1]?.problem ?? '') : '', /replay is paused/);
    const named = decidePromote(spec, obs, { target: 'pg2', auto: false, force: false });
    assert.match(
      named.kind === 'refuse' ? named.reason : '',
      /pg2 is not a healthy candidate: its replay is paused.*Promote pg3/,
    );
    assert.equal(decidePromote(spec, obs, { target: 'pg2', auto: false, force: true }).kind, 'promote');
  });

  it('does not pick a replica that does not stream while another does, nor one on an older timeline (issue 9.2)', () => {
    const cutOff = (s: ServerAnswer): ServerAnswer => ({ ...s, walReceiver: null });
    const primaryUp = observe(spec, {
      pg1: 'primary-up',
      pg2: 'replica-streaming',
      pg3: 'replica-streaming',
    });
    const d = decidePromote(spec, patch(primaryUp, 'pg2', cutOff), {
      target: undefined,
      auto: true,
      force: true,
    });
    assert.equal(d.kind === 'promote' && d.target, 'pg3');
    assert.match(
      d.kind === 'promote' ? (d.candidates[1]?.problem ?? '') : '',
      /WAL receiver is not running while pg3 streams/,
    );
    const oldTimeline = (s: ServerAnswer): ServerAnswer => ({
      ...s,
      instance: { ...s.instance, timeline: 2 },
    });
    const t = decidePromote(spec, patch(primaryGone, 'pg3', oldTimeline), {
      target: 'pg2',
      auto: false,
      force: false,
    });
    assert.match(
      t.kind === 'refuse' ? t.reason : '',
      /pg2 is not a healthy candidate: it is on timeline 1, behind timeline 2 of pg3/,
    );
  });

  it('ranks a replica whose replay is stuck short of what it received below one that replays, and never passes over its WAL silently (issue 9.2)', () => {
    const stuck = (s: ServerAnswer): ServerAnswer => ({
      ...s,
      instance: { ...s.instance, receiveLsn: '0/3000100', replayLsn: '0/3000000' },
      replayMoving: false,
    });
    const obs = patch(primaryGone, 'pg2', stuck);
    // pg2 holds more WAL than pg3: passing over it would lose that, so not without --force.
    const refused = decidePromote(spec, obs, { target: undefined, auto: true, force: false });
    assert.match(
      refused.kind === 'refuse' ? refused.reason : '',
      /pg2 holds WAL up to 0\/3000100, past the best healthy replica pg3 \(0\/3000000\), but is not healthy: its replay is stuck at 0\/3000000/,
    );
    const named = decidePromote(spec, obs, { target: 'pg3', auto: false, force: false });
    assert.match(named.kind === 'refuse' ? named.reason : '', /pg3 has less WAL .* pg2 is not healthy/);
    const d = decidePromote(spec, obs, { target: undefined, auto: true, force: true });
    assert.equal(d.kind === 'promote' && d.target, 'pg3');
    assert.match(d.kind === 'promote' ? (d.candidates[1]?.problem ?? '') : '', /replay is stuck/);
  });

  it('with --auto refuses when no replica is healthy, unless forced', () => {
    const paused = (s: ServerAnswer): ServerAnswer => ({
      ...s,
      instance: { ...s.instance, replayPaused: true },
    });
    const obs = patch(patch(primaryGone, 'pg2', paused), 'pg3', paused);
    const d = decidePromote(spec, obs, { target: undefined, auto: true, force: false });
    assert.match(
      d.kind === 'refuse' ? d.reason : '',
      /no healthy replica to promote: pg2: its replay is paused/,
    );
    assert.equal(decidePromote(spec, obs, { target: undefined, auto: true, force: true }).kind, 'promote');
  });

  it('refuses a primary that runs without answering unless forced', () => {
    const d = decidePromote(spec, observe(spec, { pg1: 'unreachable', pg2: 'replica-streaming' }), {
      target: 'pg2',
      auto: false,
      force: false,
    });
    assert.match(d.kind === 'refuse' ? d.reason : '', /pg1 still runs but does not answer/);
  });

  it('refuses a target that is not a running replica, an unknown node, and two primaries', () => {
    const down = decidePromote(
      spec,
      observe(spec, { pg1: 'primary-down', pg2: 'replica-down', pg3: 'replica-streaming' }),
      {
        target: 'pg2',
        auto: false,
        force: false,
      },
    );
    assert.match(down.kind === 'refuse' ? down.reason : '', /pg2 is not a running replica \(it is down\)/);
    assert.equal(
      decidePromote(spec, primaryGone, { target: 'pg9', auto: false, force: false }).kind,
      'refuse',
    );
    const split = decidePromote(spec, observe(spec, { pg1: 'primary-up', pg2: 'primary-up' }), {
      target: 'pg3',
      auto: false,
      force: true,
    });
    assert.equal(split.kind === 'refuse' && split.code, 'E_TWO_PRIMARIES');
  });
});

describe('a server answering on a node’s address from outside its data directory', () => {
  // pg1 still answers as the primary, but its spec'd data directory runs nothing (moved by hand).
  const healthy = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-streaming' });
  const moved: ClusterObservation = {
    ...healthy,
    nodes: healthy.nodes.map((o) =>
      o.node.name === 'pg1' ? { ...o, dataDir: { ...o.dataDir, pid: null }, serverOutsideDataDir: true } : o,
    ),
  };

  it('makes promote refuse even with --force and the old primary declared down: fencing could not stop it', () => {
    const d = decidePromote(spec, moved, { target: 'pg2', auto: false, force: true });
    assert.equal(d.kind, 'refuse');
    assert.match(
      d.reason,
      /^pg1's address 127\.0\.0\.1:\d+ is served by a PostgreSQL server that does not run from pg1's data directory \S+: pgrepl can neither stop nor start/,
    );
  });

  it('makes switchover and up refuse too', () => {
    assert.equal(decideSwitchover(spec, moved, 'pg2').kind, 'refuse');
    const plan = planUp(spec, moved, FACTS, { create: true });
    assert.equal(plan.refusal?.code, 'E_SERVER_OUTSIDE_DATA_DIR');
    assert.deepEqual(plan.steps, []);
  });
});

describe('decidePromote in sync mode', () => {
  it('refuses when as many replicas as must confirm a commit are out of reach, since the rest may lack acknowledged commits', () => {
    const sync = parseSpec(
      'cluster: t\nreplication: { mode: sync, syncCount: 1 }\nnodes:\n' +
        '  - { name: pg1, port: 5001, dataDir: /d/pg1 }\n  - { name: pg2, port: 5002, dataDir: /d/pg2 }\n  - { name: pg3, port: 5003, dataDir: /d/pg3 }\n',
      'x',
      '/',
    );
    const obs = observe(sync, { pg1: 'primary-down', pg2: 'replica-down', pg3: 'replica-streaming' });
    const d = decidePromote(sync, obs, { target: undefined, auto: true, force: false });
    assert.match(
      d.kind === 'refuse' ? d.reason : '',
      /in sync mode each acknowledged commit is on 1 replica\(s\), and pg2 cannot be asked/,
    );
    assert.equal(decidePromote(sync, obs, { target: undefined, auto: true, force: true }).kind, 'promote');
    const allThere = observe(sync, {
      pg1: 'primary-down',
      pg2: 'replica-streaming',
      pg3: 'replica-streaming',
    });
    assert.equal(
      decidePromote(sync, allThere, { target: undefined, auto: true, force: false }).kind,
      'promote',
    );
  });
});

describe('decideSwitchover', () => {
  const healthy = observe(spec, { pg1: 'primary-up', pg2: 'replica-streaming', pg3: 'replica-streaming' });

  it('picks the best streaming replica and re-points the rest', () => {
    const d = decideSwitchover(spec, healthy, undefined);
    assert.deepEqual(
      d.kind === 'switchover' && { old: d.oldPrimary, target: d.target, followers: d.followers },
      {
        old: 'pg1',
        target: 'pg2',
        followers: ['pg3'],
      },
    );
  });

  it('refuses without a primary, to the primary itself, to a replica that does not stream, or one far behind', () => {
    assert.equal(
      decideSwitchover(spec, observe(spec, { pg1: 'primary-down', pg2: 'replica-streaming' }), 'pg2').kind,
      'refuse',
    );
    assert.match(JSON.stringify(decideSwitchover(spec, healthy, 'pg1')), /already the primary/);
    const notStreaming = observe(spec, {
      pg1: 'primary-up',
      pg2: 'replica-streaming',
      pg3: 'replica-not-streaming',
    });
    assert.match(JSON.stringify(decideSwitchover(spec, notStreaming, 'pg3')), /pg3 does not stream from pg1/);
    const lagging = patch(healthy, 'pg1', (s) => ({
      ...s,
      senders: s.senders.map((x) => (x.applicationName === 'pg2' ? { ...x, lagBytes: 64 * 1024 * 1024 } : x)),
    }));
    assert.match(JSON.stringify(decideSwitchover(spec, lagging, 'pg2')), /pg2 is 64 MB behind pg1/);
  });
});

describe('replayCaughtUp', () => {
  const at = (receive: string | null, replay: string | null, replayStillForMs = 0) => ({
    receive,
    replay,
    replayStillForMs,
  });

  it('is true once everything received is replayed', () => {
    assert.equal(replayCaughtUp(at('0/4000260', '0/4000260'), {}), true);
    assert.equal(replayCaughtUp(at('0/4000260', '0/4000228'), {}), false);
    assert.equal(replayCaughtUp(at(null, null), {}), false);
  });

  it('with settleMs, accepts an incomplete last record that replay has stood before that long', () => {
    const halfSent = at('0/4000710', '0/40006E0', 250);
    assert.equal(replayCaughtUp(halfSent, {}), false, 'without settleMs it waits for every received byte');
    assert.equal(replayCaughtUp(halfSent, { settleMs: 200 }), true);
    assert.equal(replayCaughtUp(at('0/4000710', '0/40006E0', 50), { settleMs: 200 }), false);
  });

  it('with beyond, waits until replay has passed that position', () => {
    assert.equal(replayCaughtUp(at('0/5000028', '0/5000028'), { beyond: '0/5000028' }), false);
    assert.equal(replayCaughtUp(at('0/50000A0', '0/50000A0'), { beyond: '0/5000028' }), true);
    assert.equal(
      replayCaughtUp(at('0/50000A0', '0/5000010', 5000), { beyond: '0/5000028', settleMs: 200 }),
      false,
      'settling never stands in for a position that must be reached',
    );
  });
});
