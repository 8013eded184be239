/**
 * `npm run soak -- [--runs 100] [--seed S] [--mode sync|quorum|async] [--profile fast|default] [--only K] [--fault TEXT]`
 *
 * Random schedules of the lab's faults (test/helpers/lab-faults.ts) on three hosts of their own,
 * each judged by the history checker; one line per run, then
 * `soak: R runs, F faults, A acknowledged, L lost, S split-brain intervals` and the write gaps'
 * p50/p99. A run's schedule comes from the seed and its number alone: a failing run prints the
 * command that replays it (`--seed S --only K`). Exits 1 when anything was lost (in async mode:
 * beyond what maximumLagOnFailover allows, and the loss is reported), a split brain was seen, or a
 * run failed. `--fault TEXT` draws only the faults whose name contains TEXT (to hunt one fault's
 * rare failure; PGREPL_LAB_KEEP=DIR keeps the logs and faults.log, the timeline). Needs root, iproute2, nftables, etcd and libfaketime, as the lab tests do.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { HA_PROFILES } from '../src/cluster-spec/ha-profiles.js';
import { HA_DEFAULTS } from '../src/cluster-spec/resolve-ha.js';
import type { LossAllowed } from '../test/helpers/check-history.js';
import { makeLab } from '../test/helpers/lab.js';
import { LAB_FAULTS, labSettled } from '../test/helpers/lab-faults.js';
import { runFault } from '../test/helpers/lab-run.js';
import type { FaultRun } from '../test/helpers/lab-run.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '100' },
    seed: { type: 'string' },
    mode: { type: 'string', default: 'sync' },
    profile: { type: 'string', default: 'fast' },
    only: { type: 'string' },
    fault: { type: 'string' },
  },
});
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const runs = Number(values.runs);
const mode = values.mode as 'sync' | 'quorum' | 'async';
const profile = values.profile as 'fast' | 'default';

/** mulberry32: a small seedable generator; the same seed gives the same schedule. */
function random(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const faults = LAB_FAULTS.filter((f) => values.fault === undefined || f.name.includes(values.fault));
if (faults.length === 0) {
  process.stderr.write(
    `soak: no fault's name contains "${values.fault}"; they are:\n${LAB_FAULTS.map((f) => `  ${f.name}`).join('\n')}\n`,
  );
  process.exit(2);
}

/** Run k's schedule: one to three faults, each after 0.3–2 s of writes. */
function schedule(k: number) {
  const next = random(seed * 1000 + k);
  const count = 1 + Math.floor(next() * 3);
  return Array.from({ length: count }, () => ({
    fault: faults[Math.floor(next() * faults.length)] as (typeof faults)[number],
    leadMs: 300 + Math.floor(next() * 1700),
  }));
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number);
};

/**
 * In async mode a failover may lose what maximumLagOnFailover and the old leader's fencing window
 * permit (checkHistory judges each lost write against it); in sync and quorum modes nothing.
 */
const timings = HA_PROFILES[profile];
const allowed: LossAllowed | undefined =
  mode === 'async'
    ? {
        maxLagBytes: HA_DEFAULTS.maximumLagOnFailover,
        windowMs: timings.ttlSeconds * 1000 + timings.loopWaitMs + timings.retryTimeoutMs,
      }
    : undefined;

const only = values.only === undefined ? null : Number(values.only);
const indices = only === null ? Array.from({ length: runs }, (_, i) => i + 1) : [only];
process.stdout.write(`soak: seed ${seed}, ${indices.length} run(s), ${mode} mode, ${profile} profile\n`);
const lab = await makeLab({ mode, profile });
const stop = () => {
  lab.destroy();
  process.exit(130);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
const results: FaultRun[] = [];
const failures: string[] = [];
try {
  await labSettled(lab, 120_000);
  for (const k of indices) {
    for (const step of schedule(k)) {
      try {
        const r = await runFault(lab, step.fault, { leadMs: step.leadMs, ...(allowed ? { allowed } : {}) });
        results.push(r);
        const v = r.verdict;
        const bad = v.lostBeyondBound.length > 0 || v.splitBrain.length > 0;
        if (bad)
          failures.push(
            `run ${k} (${r.fault}): ${v.lostBeyondBound.length} lost beyond the bound, ${v.splitBrain.length} split-brain`,
          );
        const within = allowed && v.lost.length > 0 ? ` (${v.lostWalBytes} bytes of WAL)` : '';
        for (const b of v.splitBrain) process.stdout.write(`run ${k}: split brain: ${b.why}\n`);
        process.stdout.write(
          `run ${k}: ${r.fault}: ${r.leaderBefore} → ${r.leaderAfter}, ${v.acknowledged} acknowledged, ` +
            `${v.lost.length} lost${within}, ${v.splitBrain.length} split-brain, writes down ${v.writeGapMs[0]} ms${bad ? '  FAILED' : ''}\n`,
        );
      } catch (err) {
        failures.push(`run ${k} (${step.fault.name}): ${(err as Error).message.split('\n')[0]}`);
        process.stdout.write(`run ${k}: ${step.fault.name}: FAILED: ${(err as Error).message}\n`);
        break;
      }
    }
  }
} finally {
  // A failing run's logs outlive the lab (PGREPL_LAB_KEEP names where; else a new directory).
  if (failures.length > 0) {
    process.env['PGREPL_LAB_KEEP'] ??= mkdtempSync(join(tmpdir(), 'pgrepl-soak-logs-'));
    process.stdout.write(
      `soak: the hosts' logs and faults.log are kept in ${process.env['PGREPL_LAB_KEEP']}\n`,
    );
  }
  lab.destroy();
}
const gaps = results.flatMap((r) => (r.verdict.writeGapMs[0] == null ? [] : [r.verdict.writeGapMs[0]]));
const sum = (f: (r: FaultRun) => number) => results.reduce((n, r) => n + f(r), 0);
process.stdout.write(
  `soak: ${indices.length} runs, ${results.length} faults, ${sum((r) => r.verdict.acknowledged)} acknowledged, ` +
    `${sum((r) => r.verdict.lost.length)} lost${allowed ? ` (${sum((r) => r.verdict.lostBeyondBound.length)} beyond what maximumLagOnFailover allows)` : ''}, ` +
    `${sum((r) => r.verdict.splitBrain.length)} split-brain intervals\n` +
    `soak: writes down after a fault: p50 ${percentile(gaps, 50)} ms, p99 ${percentile(gaps, 99)} ms, max ${Math.max(0, ...gaps)} ms\n`,
);
for (const f of failures)
  process.stdout.write(
    `soak: FAILED ${f}; replay: npm run soak -- --mode ${mode} --profile ${profile} --seed ${seed} --only ${f.split(' ')[1]}${values.fault === undefined ? '' : ` --fault '${values.fault}'`}\n`,
  );
process.exit(failures.length > 0 ? 1 : 0);
