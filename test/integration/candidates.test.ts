import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clusterForSuite, upCluster, waitReplayed, waitUntil } from '../helpers/test-cluster.js';
import type { TestCluster } from '../helpers/test-cluster.js';

interface PromoteJson {
  newPrimary: string;
  candidates: { name: string; positionLsn: string | null; problem: string | null }[];
}

const streams = async (c: TestCluster, n: string) =>
  (await c.sql(n, "SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'")).length > 0;

describe('failover candidates are healthy from what they report (issue 9.2)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3', 'pg4'], (made) => (c = made), {
    setUp: async (made) => {
      await upCluster(made);
      await made.sql('pg1', 'CREATE TABLE t (id int)');
      await made.sql('pg1', 'INSERT INTO t SELECT generate_series(1, 100)');
      await waitReplayed(made, 'pg1', ['pg2', 'pg3', 'pg4']);
    },
  });

  it('promote --auto passes over a replica whose replay is paused and one that does not stream', async () => {
    // pg2 holds everything but replays nothing more; pg3 is cut off from its upstream. Both are
    // as far as pg4, and earlier in the spec: ranked on WAL alone, pg2 would win.
    await c.sql('pg2', 'SELECT pg_wal_replay_pause()');
    await c.sql('pg3', "ALTER SYSTEM SET primary_conninfo = ''");
    await c.sql('pg3', 'SELECT pg_reload_conf()');
    await waitUntil(async () => !(await streams(c, 'pg3')), 10_000, 'pg3 to stop streaming');
    assert.ok(await streams(c, 'pg4'));
    // Once pg4 is promoted, let the two follow it (a paused standby cannot switch timelines).
    let promoted = false;
    const undo = (async () => {
      await waitUntil(
        async () =>
          (
            await c.sql<{ r: boolean }>('pg4', 'SELECT pg_is_in_recovery() AS r').catch(() => [{ r: true }])
          )[0]?.r === false,
        30_000,
        'pg4 to be promoted',
      );
      promoted = true;
      await c.sql('pg2', 'SELECT pg_wal_replay_resume()');
      await c.sql('pg3', 'ALTER SYSTEM RESET primary_conninfo');
      await c.sql('pg3', 'SELECT pg_reload_conf()');
    })();
    const r = await c.cli(['promote', '--auto', '--force', '--json']);
    await undo;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(promoted);
    const result = JSON.parse(r.stdout) as PromoteJson;
    assert.equal(result.newPrimary, 'pg4');
    const problem = (n: string) => result.candidates.find((x) => x.name === n)?.problem ?? '';
    assert.match(problem('pg2'), /replay is paused/);
    assert.match(problem('pg3'), /WAL receiver is not running while pg\d streams/);
    assert.equal(problem('pg4'), '');
    assert.deepEqual(
      result.candidates.map((x) => x.name),
      ['pg4', 'pg2', 'pg3'],
      'healthy first, then the unhealthy by spec order',
    );
  });

  it('refuses a named replica whose replay is paused, with the reason, and promotes nothing', async () => {
    await waitUntil(
      async () => (await streams(c, 'pg2')) && (await streams(c, 'pg3')),
      30_000,
      'pg2 and pg3 to follow pg4',
    );
    await waitReplayed(c, 'pg4', ['pg2', 'pg3']);
    await c.sql('pg2', 'SELECT pg_wal_replay_pause()');
    await c.crash('pg4');
    const r = await c.cli(['promote', 'pg2']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_UNHEALTHY: pg2 is not a healthy candidate: its replay is paused.*Promote pg3/);
    const s = await c.status();
    assert.equal(s.primary, null, 'nothing was promoted');
    const auto = await c.cli(['promote', '--auto', '--json']);
    assert.equal(auto.code, 0, auto.stderr);
    assert.equal((JSON.parse(auto.stdout) as PromoteJson).newPrimary, 'pg3');
  });
});

describe('a caught-up replica whose receiver just started is not ranked as behind (issue 9.12)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made), { setUp: upCluster });

  it('after a failover and a rejoin on an idle cluster, status and promote take it as caught up', async () => {
    await c.crash('pg1');
    const p = await c.cli(['promote', '--auto']);
    assert.equal(p.code, 0, p.stderr);
    const j = await c.cli(['rejoin', 'pg1']);
    assert.equal(j.code, 0, j.stderr);
    await waitReplayed(c, 'pg2', ['pg1', 'pg3']);
    const [raw] = await c.sql<{ receive: string; replay: string; behind: boolean }>(
      'pg1',
      'SELECT pg_last_wal_receive_lsn()::text AS receive, pg_last_wal_replay_lsn()::text AS replay, ' +
        'pg_last_wal_receive_lsn() < pg_last_wal_replay_lsn() AS behind',
    );
    const s = JSON.parse((await c.cli(['status', '--json'])).stdout) as {
      nodes: { name: string; lsn: string; receiveLsn: string }[];
    };
    const pg1 = s.nodes.find((n) => n.name === 'pg1');
    assert.equal(
      pg1?.receiveLsn,
      pg1?.lsn,
      `status: pg1 holds what it replayed (server says ${JSON.stringify(raw)})`,
    );
    await c.crash('pg2');
    const again = await c.cli(['promote', 'pg1', '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as PromoteJson).newPrimary, 'pg1');
  });
});
