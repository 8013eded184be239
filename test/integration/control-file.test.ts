import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseControlData, readLatestCheckpoint } from '../../src/postgres/read-controldata.js';
import { clusterForSuite, pgBin } from '../helpers/test-cluster.js';
import type { TestCluster } from '../helpers/test-cluster.js';

// A switchover reads the old primary's latest checkpoint from global/pg_control itself; it must say
// what pg_controldata says, on a primary and on a replica, running and stopped.
describe('the control file, read in-process', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), {
    setUp: async (made) => {
      const up = await made.cli(['up']);
      assert.equal(up.code, 0, up.stderr);
    },
  });

  /** Each node is in the state given, and pgrepl reads its control file as pg_controldata does. */
  const agree = (expected: Record<string, string>) => {
    for (const [name, state] of Object.entries(expected)) {
      const text = execFileSync(join(pgBin(), 'pg_controldata'), ['-D', c.dataDir(name)], {
        encoding: 'utf8',
        env: { ...process.env, LC_ALL: 'C' },
      });
      const theirs = parseControlData(text);
      assert.equal(theirs.state, state, name);
      const { checkpointLsn, timeline } = theirs;
      assert.deepEqual(readLatestCheckpoint(c.dataDir(name)), { state, checkpointLsn, timeline }, name);
    }
  };

  it('says what pg_controldata says while the servers run', () => {
    agree({ pg1: 'in production', pg2: 'in archive recovery' });
  });

  it('says what pg_controldata says once they are stopped cleanly', async () => {
    const down = await c.cli(['down']);
    assert.equal(down.code, 0, down.stderr);
    agree({ pg1: 'shut down', pg2: 'shut down in recovery' });
  });

  it('knows no control file where there is none', () => {
    assert.equal(readLatestCheckpoint(join(c.base, 'no-such-dir')), null);
  });
});
