import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clusterForSuite, upCluster, waitUntil } from '../helpers/test-cluster.js';
import type { TestCluster } from '../helpers/test-cluster.js';

// `postgres.walSegmentSize` goes to initdb; the replica's copy has the primary's size, and the
// commands that read WAL files themselves (rejoin's divergence check, rewind) work with it.
describe('a cluster made with 1 MB WAL segments', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), {
    setUp: upCluster,
    extraSpec: 'postgres:\n  walSegmentSize: 1\n',
  });

  const segmentSize = async (node: string) =>
    (await c.sql<{ s: string }>(node, "SELECT current_setting('wal_segment_size') AS s"))[0]?.s;

  it('has 1 MB segments on the primary and on its replica', async () => {
    assert.equal(await segmentSize('pg1'), '1MB');
    assert.equal(await segmentSize('pg2'), '1MB');
  });

  it('switches over, and rejoins the old primary, across many segments of WAL', async () => {
    // Some 3 MB of WAL: the fork lies several segments past the last checkpoint.
    await c.sql(
      'pg1',
      'CREATE TABLE t AS SELECT g AS x, repeat(md5(g::text), 4) AS pad FROM generate_series(1, 20000) g',
    );
    const sw = await c.cli(['switchover', '--to', 'pg2']);
    assert.equal(sw.code, 0, sw.stderr);
    await c.sql('pg2', 'INSERT INTO t SELECT g, g::text FROM generate_series(1, 1000) g');
    const [ro] = await c.sql<{ r: boolean }>('pg1', 'SELECT pg_is_in_recovery() AS r');
    assert.equal(ro?.r, true, 'the old primary is a replica now');
    await waitUntil(
      async () => (await c.sql<{ n: string }>('pg1', 'SELECT count(*) AS n FROM t'))[0]?.n === '21000',
      10_000,
      'the old primary replays what the new one wrote',
    );
  });
});
