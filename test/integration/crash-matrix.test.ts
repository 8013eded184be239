/**
 * Issue 9.4: pgrepl SIGKILLed before, during and after each step of `up`, `switchover`, `promote`
 * and `rejoin` (real signals, through the PGREPL_CRASH_AT failpoints); then `resume` (or `up`
 * again) must leave a healthy cluster with one primary and every acknowledged commit.
 * `npm test` runs a fixed subset (every step, one phase each); `npm run test:crash` the whole matrix.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clusterForSuite, upCluster, waitReplayed } from '../helpers/test-cluster.js';
import type { CliResult, TestCluster } from '../helpers/test-cluster.js';

const FULL = process.env['PGREPL_CRASH_MATRIX'] === 'full';
const PHASES = ['before', 'during', 'after'] as const;

/** The phases tried for the step at `index`: all of them, or in the subset one, rotating. */
const phasesFor = (index: number) => (FULL ? PHASES : [PHASES[(index + 1) % PHASES.length] as string]);

/** Runs a command that must die by its failpoint, and checks the cluster never had two primaries. */
async function killedAt(c: TestCluster, args: string[], at: string): Promise<void> {
  const r: CliResult = await c.cli(args, { env: { PGREPL_CRASH_AT: at } });
  assert.equal(r.signal, 'SIGKILL', `${args.join(' ')} should die at ${at}: ${r.stderr}`);
  const s = await c.status();
  assert.ok(s.nodes.filter((n) => n.role === 'primary').length <= 1, `never two primaries (${at})`);
}

async function resume(c: TestCluster, at: string): Promise<void> {
  const r = await c.cli(['resume']);
  assert.equal(r.code, 0, `resume after ${at}: ${r.stderr}`);
}

/** Every row acknowledged so far is on the primary, and the cluster is healthy. */
async function healthyWith(c: TestCluster, acked: number[], at: string): Promise<string> {
  const s = await c.status();
  assert.equal(s.healthy, true, `after ${at}: ${s.warnings.join('\n')}`);
  const primary = s.primary as string;
  if (acked.length === 0) return primary;
  const rows = new Set((await c.sql<{ id: number }>(primary, 'SELECT id FROM acked')).map((r) => r.id));
  assert.deepEqual(
    acked.filter((id) => !rows.has(id)),
    [],
    `every acknowledged commit is on ${primary} (${at})`,
  );
  return primary;
}

async function writeAcked(c: TestCluster, primary: string, acked: number[]): Promise<void> {
  const id = acked.length + 1;
  await c.sql(primary, 'INSERT INTO acked VALUES ($1)', [id]);
  acked.push(id);
}

/**
 * A commit that only `primary` gets (its WAL senders frozen by PID), so that after a failover its
 * rejoin has to go through pg_rewind: a node whose WAL ends at the fork is started as it is.
 */
async function writeOnlyOn(c: TestCluster, primary: string): Promise<void> {
  const senders = await c.sql<{ pid: number }>(primary, 'SELECT pid FROM pg_stat_replication');
  for (const s of senders) process.kill(s.pid, 'SIGSTOP');
  await c.sql(primary, 'INSERT INTO acked VALUES (-1 - (SELECT count(*) FROM acked))');
}

async function setUp(c: TestCluster): Promise<void> {
  await upCluster(c);
  await c.sql('pg1', 'CREATE TABLE acked (id int PRIMARY KEY)');
}

const otherReplica = async (c: TestCluster, primary: string) =>
  (await c.status()).nodes.find((n) => n.role === 'replica' && n.name !== primary)?.name as string;

describe('crash matrix: switchover killed at each step, then resume (issue 9.4)', () => {
  let c: TestCluster;
  const acked: number[] = [];
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made), { setUp });
  const steps = (o: string, t: string) => [
    `checkpoint ${o}`,
    `stop ${o}`,
    `catch up ${t}`,
    `promote ${t}`,
    `slots on ${t}`,
    `demote ${o}`,
    're-point replicas',
  ];
  for (let i = 0; i < 7; i++) {
    for (const phase of phasesFor(i)) {
      it(`step ${i + 1}, ${phase}`, async () => {
        const old = (await c.status()).primary as string;
        const target = await otherReplica(c, old);
        const at = `${phase}:${steps(old, target)[i]}`;
        await writeAcked(c, old, acked);
        await killedAt(c, ['switchover', '--to', target], at);
        await resume(c, at);
        assert.equal(await healthyWith(c, acked, at), target);
      });
    }
  }
});

describe('crash matrix: promote and rejoin killed at each step, then resume (issue 9.4)', () => {
  let c: TestCluster;
  const acked: number[] = [];
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made), { setUp });
  const promoteSteps = (o: string, t: string) => [
    `fence ${o}`,
    `catch up ${t}, slots on it`,
    `promote ${t}`,
    're-point replicas',
  ];
  const rejoinSteps = (n: string, p: string) => [`stop ${n}`, `slot ${n} on ${p}`, `rewind ${n}`];
  for (let i = 0; i < 4; i++) {
    for (const phase of phasesFor(i)) {
      it(`promote step ${i + 1}, ${phase}; rejoin step ${(i % 3) + 1}, ${phase}`, async () => {
        const old = (await c.status()).primary as string;
        const target = await otherReplica(c, old);
        await writeAcked(c, old, acked);
        await waitReplayed(
          c,
          old,
          c.nodes.map((n) => n.name).filter((n) => n !== old),
        );
        await writeOnlyOn(c, old);
        await c.crash(old);
        const atPromote = `${phase}:${promoteSteps(old, target)[i]}`;
        await killedAt(c, ['promote', target], atPromote);
        await resume(c, atPromote);
        const atRejoin = `${phase}:${rejoinSteps(old, target)[i % 3]}`;
        await killedAt(c, ['rejoin', old], atRejoin);
        await resume(c, atRejoin);
        assert.equal(await healthyWith(c, acked, `${atPromote}, ${atRejoin}`), target);
      });
    }
  }
});

describe('crash matrix: up killed at each step of a new cluster, then up again (issue 9.4)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made));
  const steps = [
    'init-primary pg1',
    'ensure-replication-role pg1',
    'create-slot pg1 pg2',
    'create-slot pg1 pg3',
    'clone pg2',
    'clone pg3',
    'start pg2',
    'start pg3',
    'wait-streaming pg2',
    'wait-streaming pg3',
  ];
  steps.forEach((step, i) => {
    for (const phase of FULL ? PHASES : i % 3 === 0 ? ['during'] : []) {
      it(`${step}, ${phase}`, async () => {
        const at = `${phase}:${step}`;
        const r = await c.cli(['up'], { env: { PGREPL_CRASH_AT: at } });
        assert.equal(r.signal, 'SIGKILL', `up should die at ${at}: ${r.stderr}`);
        await upCluster(c);
        assert.equal(await healthyWith(c, [], at), 'pg1');
        const d = await c.cli(['destroy', '--yes']);
        assert.equal(d.code, 0, d.stderr);
      });
    }
  });
});
