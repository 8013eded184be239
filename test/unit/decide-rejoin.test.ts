import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideRejoin } from '../../src/cluster/decide/decide-rejoin.js';
import type { RejoinFacts } from '../../src/cluster/decide/decide-rejoin.js';

const first: RejoinFacts = {
  node: 'pg1',
  primary: 'pg2',
  askedReclone: false,
  streamsNow: false,
  hasData: true,
  resumed: null,
  divergence: null,
  rewound: null,
  walRemoved: null,
};
const kinds = (f: RejoinFacts) => decideRejoin(f).kind;

describe('decideRejoin', () => {
  it('checks the history before anything else, then rewinds a node that forked', () => {
    assert.equal(kinds(first), 'check');
    const forked = {
      ...first,
      divergence: { kind: 'forked-timeline' as const, reason: 'it went on past 0/3000000' },
    };
    assert.equal(kinds(forked), 'rewind');
  });

  it('starts a node whose history is a prefix as it is: no pg_rewind, whose crash recovery would write past the fork', () => {
    const d = decideRejoin({ ...first, divergence: { kind: 'follows', reason: 'its WAL ends at the fork' } });
    assert.deepEqual(
      [d.kind, d.kind === 'start-only' && d.method, d.reason],
      ['start-only', 'none needed', 'its WAL ends at the fork'],
    );
  });

  it('re-clones a node whose data directory is gone or empty: there is nothing to check or rewind', () => {
    const d = decideRejoin({ ...first, hasData: false });
    assert.deepEqual([d.kind, d.reason], ['reclone', 'pg1 has no data directory: a fresh copy of pg2']);
    // A re-clone killed half-way moved the directory aside: the journal's reason is the one to give.
    const resumed = { rewindDone: false, rewindInterrupted: false, recloneBegun: true };
    assert.match(decideRejoin({ ...first, hasData: false, resumed }).reason, /killed while it re-cloned/);
  });

  it('re-clones a node that diverged on the primary’s own timeline: pg_rewind would see nothing', () => {
    const d = decideRejoin({ ...first, divergence: { kind: 'diverged', reason: 'it ran as a primary' } });
    assert.equal(d.kind, 'reclone');
    assert.match(
      d.reason,
      /^pg1 diverged from pg2 without a timeline change \(pg_rewind cannot see that\): it ran as a primary/,
    );
  });

  it('starts the node once pg_rewind did its work, and says when none was needed', () => {
    const checked = { ...first, divergence: { kind: 'follows' as const, reason: 'a prefix' } };
    const rewound = decideRejoin({ ...checked, rewound: { ok: true, noRewindRequired: false, error: null } });
    assert.deepEqual(
      [rewound.kind, rewound.kind === 'start-only' && rewound.method],
      ['start-only', 'rewind'],
    );
    const none = decideRejoin({ ...checked, rewound: { ok: true, noRewindRequired: true, error: null } });
    assert.equal(none.kind === 'start-only' && none.method, 'none needed');
    const failed = decideRejoin({
      ...checked,
      rewound: { ok: false, noRewindRequired: false, error: 'single-user mode failed' },
    });
    assert.deepEqual(
      [failed.kind, failed.reason],
      ['reclone', 'pg_rewind could not rewind it: single-user mode failed'],
    );
  });

  it('re-clones a node that cannot stream because the primary no longer has its WAL', () => {
    const started = {
      ...first,
      divergence: { kind: 'follows' as const, reason: 'a prefix' },
      rewound: { ok: true, noRewindRequired: true, error: null },
      walRemoved: 'requested WAL segment has already been removed',
    };
    assert.deepEqual(decideRejoin(started), {
      kind: 'reclone',
      reason: 'requested WAL segment has already been removed',
    });
  });

  it('after a kill, trusts a finished pg_rewind and never one that was cut off', () => {
    const resumed = { rewindDone: false, rewindInterrupted: false, recloneBegun: false };
    assert.equal(kinds({ ...first, resumed: { ...resumed, rewindDone: true } }), 'start-only');
    assert.equal(kinds({ ...first, resumed: { ...resumed, rewindInterrupted: true } }), 'reclone');
    assert.equal(
      kinds({ ...first, resumed: { ...resumed, rewindDone: true, recloneBegun: true } }),
      'reclone',
    );
  });

  it('does nothing to a replica that already streams from the primary: it is not even stopped (issue 11)', () => {
    assert.deepEqual(decideRejoin({ ...first, streamsNow: true }), {
      kind: 'nothing',
      reason: 'pg1 already streams from pg2 on its timeline',
    });
    assert.equal(
      kinds({ ...first, streamsNow: true, askedReclone: '--reclone' }),
      'reclone',
      '--reclone still re-clones',
    );
  });

  it('re-clones when asked, whatever else is known', () => {
    assert.equal(
      kinds({ ...first, askedReclone: '--reclone', divergence: { kind: 'follows', reason: 'a prefix' } }),
      'reclone',
    );
  });
});
