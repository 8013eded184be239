import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { CliResult, TestCluster } from '../helpers/test-cluster.js';
import {
  alive,
  childPids,
  clusterForSuite,
  freePort,
  upCluster,
  waitUntil,
} from '../helpers/test-cluster.js';

/** Starts `pgrepl up` and returns once its pg_basebackup is copying into `tmp`. */
async function upUntilCopying(
  c: TestCluster,
  tmp: string,
): Promise<{ run: Promise<CliResult>; cli: number; basebackup: number }> {
  let cli = 0;
  let basebackup = 0;
  const run = c.cli(['up'], { onSpawn: (pid) => (cli = pid) });
  await waitUntil(
    () => {
      const [bb] = cli ? childPids(cli, 'pg_basebackup') : [];
      if (bb === undefined || !existsSync(join(tmp, 'base'))) return false;
      basebackup = bb;
      return true;
    },
    30_000,
    'pg_basebackup to be copying',
  );
  return { run, cli, basebackup };
}

describe('a clone killed half-way', () => {
  let c: TestCluster;
  clusterForSuite(['pg1'], (made) => (c = made), {
    setUp: async (made) => {
      await upCluster(made);
      // ~200 MB, so that the copy takes long enough to be caught in the middle.
      await made.sql(
        'pg1',
        'CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 12) AS pad FROM generate_series(1, 400000) g',
      );
    },
  });

  it('fails clearly, leaves no data directory that looks valid, and the next up retries cleanly', async () => {
    c.nodes.push({ name: 'pg2', port: await freePort() });
    c.writeSpec();
    const tmp = `${c.dataDir('pg2')}.pgrepl-clone`;
    const { run, basebackup: killed } = await upUntilCopying(c, tmp);
    process.kill(killed, 'SIGKILL');
    const r = await run;
    assert.ok(killed > 0);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /E_COMMAND_FAILED: pg_basebackup into .*pg2\.pgrepl-clone failed/);
    assert.ok(!existsSync(c.dataDir('pg2')), 'no half-cloned data directory');
    assert.ok(!existsSync(tmp), 'the partial copy was removed');
    assert.equal(c.postmasterPid('pg2'), null);

    const again = await c.cli(['up']);
    assert.equal(again.code, 0, again.stderr);
    const [n] = await c.sql<{ n: string }>('pg2', 'SELECT count(*) AS n FROM big');
    assert.equal(n?.n, '400000');
    const [slot] = await c.sql<{ active: boolean }>(
      'pg1',
      "SELECT active FROM pg_replication_slots WHERE slot_name = 'pg2'",
    );
    assert.equal(slot?.active, true);
  });

  it('a pgrepl killed while it clones leaves no orphan: the next up stops it first, then clones (issue 9.9)', async () => {
    c.nodes.push({ name: 'pg3', port: await freePort() });
    c.writeSpec();
    const tmp = `${c.dataDir('pg3')}.pgrepl-clone`;
    // A superuser password file an initdb of a killed pgrepl left behind (its PID is gone).
    const secrets = join(c.base, 'state', 'secrets');
    writeFileSync(join(secrets, '.initdb-999999999-abc'), 'secret\n', { mode: 0o600 });
    const { run, cli, basebackup: orphan } = await upUntilCopying(c, tmp);
    process.kill(cli, 'SIGKILL');
    assert.equal((await run).signal, 'SIGKILL');
    assert.ok(
      alive(orphan),
      'pg_basebackup outlived the killed pgrepl (it runs in a process group of its own)',
    );
    // Held where it is: a copy this small could otherwise finish before the next `up` looks.
    process.kill(orphan, 'SIGSTOP');

    const again = await c.cli(['up']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stderr,
      new RegExp(`stopped pg_basebackup \\(pid ${orphan}, left by pgrepl pid ${cli}\\)`),
    );
    assert.ok(!alive(orphan), 'the orphan is gone');
    const [n] = await c.sql<{ n: string }>('pg3', 'SELECT count(*) AS n FROM big');
    assert.equal(n?.n, '400000');
    assert.deepEqual(
      readdirSync(secrets).filter((f) => f.startsWith('.initdb-')),
      [],
      'the left-behind password file is removed',
    );
  });
});
