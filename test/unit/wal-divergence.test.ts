import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { walDivergence } from '../../src/cluster/observe/wal-divergence.js';
import type { PrimaryFacts, StoppedNodeFacts } from '../../src/cluster/observe/wal-divergence.js';

const replica: StoppedNodeFacts = {
  state: 'shut down in recovery',
  timeline: 1,
  checkpointLsn: '0/3000060',
  backupLabel: false,
  walEnd: null,
};
const primary: PrimaryFacts = { timeline: 1, history: [], flushLsn: '0/3000100', recordAtCheckpoint: 'same' };

describe('walDivergence (issue 9.1)', () => {
  it('lets a replica that was only stopped stream as it is', () => {
    assert.equal(walDivergence(replica, primary).kind, 'follows');
    assert.equal(walDivergence({ ...replica, state: 'in archive recovery' }, primary).kind, 'follows');
    // The primary recycled that segment: nothing to compare, and it stopped as a replica.
    assert.equal(walDivergence(replica, { ...primary, recordAtCheckpoint: 'unknown' }).kind, 'follows');
  });

  it('finds a node that ran as a primary on the primary’s own timeline, ahead of it or behind it', () => {
    const ranAsPrimary = { ...replica, state: 'shut down' };
    const behind = walDivergence(ranAsPrimary, { ...primary, recordAtCheckpoint: 'different' });
    assert.equal(behind.kind, 'diverged');
    assert.match(
      behind.reason,
      /control file says "shut down": it ran as a primary on the primary's own timeline 1/,
    );
    assert.equal(walDivergence({ ...replica, state: 'in production' }, primary).kind, 'diverged');
    const ahead = walDivergence({ ...replica, checkpointLsn: '0/3000200' }, primary);
    assert.match(
      ahead.reason,
      /last checkpoint 0\/3000200 lies past the end of the primary's WAL \(0\/3000100\)/,
    );
    const other = walDivergence(replica, { ...primary, recordAtCheckpoint: 'different' });
    assert.match(other.reason, /record at its last checkpoint 0\/3000060 is not the primary's record/);
  });

  it('trusts a fresh copy that has not started yet (pg_basebackup copies an "in production" control file)', () => {
    assert.equal(
      walDivergence({ ...replica, state: 'in production', backupLabel: true }, primary).kind,
      'follows',
    );
  });

  it('leaves older timelines to pg_rewind, except a clean stop before the fork (a switched-over primary)', () => {
    const promoted = { ...primary, timeline: 2, history: [{ timeline: 1, endedAt: '0/3000100' }] };
    assert.equal(walDivergence({ ...replica, state: 'shut down' }, promoted).kind, 'follows');
    assert.equal(
      walDivergence({ ...replica, state: 'shut down', checkpointLsn: '0/3000100' }, promoted).kind,
      'forked-timeline',
    );
    assert.equal(walDivergence({ ...replica, state: 'in production' }, promoted).kind, 'forked-timeline');
    // A replica may have replayed past its last restartpoint: only pg_rewind can tell.
    assert.equal(walDivergence(replica, promoted).kind, 'forked-timeline');
    assert.match(walDivergence({ ...replica, timeline: 5 }, promoted).reason, /not in the history/);
  });

  it('lets a node whose own WAL ends at or before the fork follow, however it stopped', () => {
    const promoted = { ...primary, timeline: 2, history: [{ timeline: 1, endedAt: '0/3000100' }] };
    const crashed = { ...replica, state: 'in production' };
    const atFork = walDivergence({ ...crashed, walEnd: '0/3000100' }, promoted);
    assert.deepEqual(
      [atFork.kind, atFork.reason],
      ['follows', "its WAL ends at 0/3000100 on timeline 1, where the primary's timeline 2 forked off it"],
    );
    const before = walDivergence({ ...replica, walEnd: '0/3000080' }, promoted);
    assert.match(before.reason, /ends at 0\/3000080 on timeline 1, before .* forked off it at 0\/3000100/);
    assert.equal(walDivergence({ ...crashed, walEnd: '0/3000108' }, promoted).kind, 'forked-timeline');
    // On the primary's own timeline the control file decides, whatever the WAL's end.
    assert.equal(walDivergence({ ...crashed, walEnd: '0/3000060' }, primary).kind, 'diverged');
  });
});
