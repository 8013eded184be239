import { TestCluster, waitUntil } from '../test/helpers/test-cluster.js';
import { Writer } from '../test/helpers/writer.js';

/** The parts of `rejoin --json` the benchmarks read. */
interface RejoinJson {
  method: string;
  rewindCopiedMb: number | null;
}

const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

/** How a rejoin went, for the tables: what pg_rewind copied, or why it did not run. */
const howRejoined = (j: RejoinJson): string =>
  j.method === 'rewind'
    ? `pg_rewind copied ${j.rewindCopiedMb ?? '?'} MB`
    : j.method === 'none needed'
      ? 'no pg_rewind: its WAL ended at the fork'
      : j.method;

async function clusterWithTable(): Promise<TestCluster> {
  const c = await TestCluster.create(['pg1', 'pg2', 'pg3']);
  const up = await c.cli(['up']);
  if (up.code !== 0) throw new Error(`up failed: ${up.stderr}`);
  // No primary key: each round's writer counts from 1 again.
  await c.sql('pg1', 'CREATE TABLE writes (id int, at timestamptz DEFAULT now())');
  return c;
}

const writerFor = (c: TestCluster) =>
  new Writer(
    c.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    c.superuserPassword(),
    10,
  );

/** Switchovers back and forth under a client writing every 10 ms: the longest time it could not write. */
export async function timeSwitchovers(rounds: number): Promise<{ gapMs: number[]; internalGapMs: number[] }> {
  const c = await clusterWithTable();
  const gapMs: number[] = [];
  const internalGapMs: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const to = i % 2 === 0 ? 'pg2' : 'pg1';
      const w = writerFor(c);
      w.start();
      await waitUntil(() => w.acked.length >= 20, 10_000, 'writes before');
      const r = await c.cli(['switchover', '--to', to, '--json']);
      if (r.code !== 0) throw new Error(`switchover failed: ${r.stderr}`);
      const before = w.acked.length;
      await waitUntil(() => w.acked.length >= before + 20, 10_000, 'writes after');
      await w.stop();
      gapMs.push(w.longestGapMs);
      internalGapMs.push((JSON.parse(r.stdout) as { writeGapMs: number }).writeGapMs);
      log(`switchover round ${i + 1} -> ${to}: client saw ${w.longestGapMs} ms without a write`);
    }
    return { gapMs, internalGapMs };
  } finally {
    await c.cleanup();
  }
}

/**
 * Unplanned failovers: the primary is killed (SIGKILL to every process), then the clock runs from
 * starting `pgrepl promote --auto` to the first write a client gets accepted; then the old primary
 * is rejoined (pg_rewind) and the clock runs until it streams again.
 */
export async function timePromotes(
  rounds: number,
): Promise<{ promoteMs: number[]; rejoinMs: number[]; how: string[] }> {
  const c = await clusterWithTable();
  const promoteMs: number[] = [];
  const rejoinMs: number[] = [];
  const how: string[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const primary = (JSON.parse((await c.cli(['status', '--json'])).stdout) as { primary: string }).primary;
      await c.sql(primary, 'INSERT INTO writes (id) VALUES (0)');
      await c.crash(primary);
      // The client keeps trying, as an application would; the clock starts with the command.
      const w = writerFor(c);
      w.start();
      const t0 = Date.now();
      const r = await c.cli(['promote', '--auto', '--json']);
      if (r.code !== 0) throw new Error(`promote failed: ${r.stderr}`);
      await waitUntil(() => w.firstAckAt !== undefined, 10_000, 'the first write');
      promoteMs.push((w.firstAckAt as number) - t0);
      await w.stop();
      const t1 = performance.now();
      const j = await c.cli(['rejoin', primary, '--json']);
      if (j.code !== 0) throw new Error(`rejoin failed: ${j.stderr}`);
      rejoinMs.push(performance.now() - t1);
      how.push(howRejoined(JSON.parse(j.stdout) as RejoinJson));
      log(
        `failover round ${i + 1}: promote to first write ${promoteMs.at(-1)?.toFixed(0)} ms, rejoin ${rejoinMs.at(-1)?.toFixed(0)} ms (${how.at(-1)})`,
      );
    }
    return { promoteMs, rejoinMs, how };
  } finally {
    await c.cleanup();
  }
}

/**
 * Failover and rejoin rounds on a cluster whose primary first wrote ~400 MB of WAL, with the given
 * `settings:` lines: what keeping WAL (wal_keep_size) costs each pg_rewind afterwards.
 */
export async function timeRejoinsAfterLoad(
  settings: string,
  rounds: number,
): Promise<{ rejoinMs: number[]; how: string[] }> {
  const c = await TestCluster.create(['pg1', 'pg2', 'pg3'], `settings:\n${settings}`);
  const rejoinMs: number[] = [];
  const how: string[] = [];
  try {
    const up = await c.cli(['up']);
    if (up.code !== 0) throw new Error(`up failed: ${up.stderr}`);
    await c.sql('pg1', 'CREATE TABLE fill AS SELECT g, md5(g::text) AS m FROM generate_series(1, 3000000) g');
    await c.sql('pg1', 'CHECKPOINT');
    for (let i = 0; i < rounds; i++) {
      const primary = (await c.status()).primary as string;
      await c.crash(primary);
      const p = await c.cli(['promote', '--auto']);
      if (p.code !== 0) throw new Error(`promote failed: ${p.stderr}`);
      const t0 = performance.now();
      const j = await c.cli(['rejoin', primary, '--json']);
      if (j.code !== 0) throw new Error(`rejoin failed: ${j.stderr}`);
      rejoinMs.push(performance.now() - t0);
      how.push(howRejoined(JSON.parse(j.stdout) as RejoinJson));
      log(
        `rejoin after load (${settings.trim()}) round ${i + 1}: ${rejoinMs.at(-1)?.toFixed(0)} ms, ${how.at(-1)}`,
      );
    }
    return { rejoinMs, how };
  } finally {
    await c.cleanup();
  }
}

/**
 * On a cluster whose primary holds a pgbench database: freeze the WAL senders, write a few MB
 * that only the primary gets, kill it, promote, then rejoin it by pg_rewind and, for comparison,
 * by a full re-clone.
 */
export async function timeRewindVsReclone(
  c: TestCluster,
  primary: string,
): Promise<{ rewindMs: number; recloneMs: number; divergedMb: number; copiedMb: number | null }> {
  const senders = await c.sql<{ pid: number }>(primary, 'SELECT pid FROM pg_stat_replication');
  const [before] = await c.sql<{ lsn: string }>(primary, 'SELECT pg_current_wal_lsn()::text AS lsn');
  for (const s of senders) process.kill(s.pid, 'SIGSTOP');
  await c.sql(primary, 'UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 40000');
  const [diff] = await c.sql<{ mb: number }>(
    primary,
    'SELECT (pg_current_wal_lsn() - $1::pg_lsn) / 1048576.0 AS mb',
    [before?.lsn],
  );
  await c.crash(primary);
  const p = await c.cli(['promote', '--auto']);
  if (p.code !== 0) throw new Error(`promote failed: ${p.stderr}`);
  const t0 = performance.now();
  const rewind = await c.cli(['rejoin', primary, '--json']);
  const rewindMs = performance.now() - t0;
  const rewound = rewind.code === 0 ? (JSON.parse(rewind.stdout) as RejoinJson) : null;
  if (rewound?.method !== 'rewind') throw new Error(`rewind failed: ${rewind.stdout}${rewind.stderr}`);
  const t1 = performance.now();
  const reclone = await c.cli(['rejoin', primary, '--reclone']);
  const recloneMs = performance.now() - t1;
  if (reclone.code !== 0) throw new Error(`reclone failed: ${reclone.stderr}`);
  log(
    `rejoin after ${Number(diff?.mb).toFixed(1)} MB of divergence: rewind ${rewindMs.toFixed(0)} ms, reclone ${recloneMs.toFixed(0)} ms`,
  );
  return { rewindMs, recloneMs, divergedMb: Number(diff?.mb), copiedMb: rewound.rewindCopiedMb };
}
