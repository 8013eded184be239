import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { controlOf } from '../../src/cluster/actions/control-of.js';
import { nodeOf } from '../../src/cluster/context/node-sql.js';
import { buildContext } from '../../src/cluster/context/cluster-context.js';
import { processRunner } from '../../src/postgres/command-runner.js';
import { parseLsn } from '../../src/postgres/lsn.js';
import { parseControlData, readLatestCheckpoint } from '../../src/postgres/read-controldata.js';
import { loadSpec } from '../../src/cluster-spec/load-spec.js';
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

  // A switchover gives up the leader key the moment the old primary's shutdown checkpoint is
  // written: by then its replicas hold that record, and the server takes no more writes.
  it('sees a fast shutdown end at its checkpoint, which the replica already holds', async () => {
    await c.sql('pg1', 'CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1)');
    const ctx = await buildContext(await loadSpec({ cwd: c.base, env: process.env, file: c.specFile }), {
      runner: processRunner,
      env: process.env,
    });
    const control = controlOf(ctx, nodeOf(ctx, 'pg1'));
    const stopped = await control.shutDownCleanly();
    assert.equal(stopped.state, 'shut down');
    const [row] = await c.sql<{ lsn: string }>('pg2', 'SELECT pg_last_wal_receive_lsn()::text AS lsn');
    assert.ok(row && parseLsn(row.lsn) > parseLsn(stopped.checkpointLsn), `pg2 at ${row?.lsn}`);
    await control.stop('fast');
    assert.equal(control.state().pid, null);
    assert.equal(readLatestCheckpoint(c.dataDir('pg1'))?.checkpointLsn, stopped.checkpointLsn);
    // Asked of a stopped server, it says how that one ended.
    assert.equal((await control.shutDownCleanly()).state, 'shut down');
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
