/**
 * `npm run bench:lab`: automatic failover on the lab's hosts (a network namespace each, a real
 * network hop between them, TLS on every connection, etcd on three hosts, the units of `render
 * systemd`), with the method of the loopback benchmark: sync mode, a client writing every 20 ms
 * and probes writing to every node every 100 ms; per profile, 10 deaths of the leader's host
 * (postmaster group, agent, watchdog SIGKILLed) and 10 partitions of the leader (its link down,
 * brought back up once another node leads). Prints the rows for BENCHMARKS.md; a trial in which no
 * other node took over within 30 s is listed as failed. PGREPL_BENCH_LAB_PROFILES=fast runs one profile,
 * PGREPL_BENCH_LAB_ROWS=partition (or death) one kind of fault.
 */
import { cpus, loadavg, release, totalmem } from 'node:os';
import { makeLab } from '../test/helpers/lab.js';
import { LAB_FAULTS, labSettled } from '../test/helpers/lab-faults.js';
import { runFault } from '../test/helpers/lab-run.js';

const TRIALS = Number(process.env['PGREPL_BENCH_LAB_TRIALS'] ?? 10);
const fault = (prefix: string) => {
  const f = LAB_FAULTS.find((x) => x.name.startsWith(prefix));
  if (!f) throw new Error(`no lab fault ${prefix}`);
  return f;
};
const death = fault('kill -9 of the leader host');
const partition = fault("the leader's link down");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const rows: string[] = [];
const started = new Date().toISOString();
const faultKinds = (process.env['PGREPL_BENCH_LAB_ROWS'] ?? 'death,partition').split(',');
const profiles = (process.env['PGREPL_BENCH_LAB_PROFILES'] ?? 'default,fast').split(',') as (
  'default' | 'fast'
)[];
for (const profile of profiles) {
  const lab = await makeLab({ mode: 'sync', profile });
  try {
    await labSettled(lab, 120_000);
    for (const [what, f] of (
      [
        [
          'leader host death (postmaster group, agent, watchdog SIGKILLed) → first write on the new primary',
          death,
        ],
        ['partition of the leader (its link down) → first write on the new primary', partition],
      ] as const
    ).filter(([w]) =>
      faultKinds.some((r) => w.startsWith(r === 'death' ? 'leader host death' : 'partition')),
    )) {
      const times: number[] = [];
      const gaps: number[] = [];
      let lost = 0;
      let split = 0;
      const failed: string[] = [];
      for (let i = 0; i < TRIALS; i++) {
        // A trial with no failover is reported, and the next one starts on the healed lab.
        const r = await runFault(lab, f).catch((err: Error) => {
          failed.push(`trial ${i + 1}: ${err.message.split('\n')[0]}`);
          return null;
        });
        if (r === null) continue;
        if (r.newPrimaryWriteMs === null) throw new Error(`${f.name}: no write on another node`);
        times.push(r.newPrimaryWriteMs);
        gaps.push(r.verdict.writeGapMs[0] ?? 0);
        lost += r.verdict.lost.length;
        split += r.verdict.splitBrain.length;
        process.stderr.write(
          `${profile} ${f.name} ${i + 1}: ${r.newPrimaryWriteMs} ms (client's gap ${r.verdict.writeGapMs[0]} ms)\n`,
        );
      }
      rows.push(
        `| ${what}, ${profile} profile | ${median(times)} ms | ${Math.max(...times)} ms | ${times.join(', ')} | ` +
          `${profile === 'fast' ? '≤ 2 s' : '≤ 5 s'} | ${lost} | ${split} | ${median(gaps)} ms / ${Math.max(...gaps)} ms |` +
          (failed.length > 0 ? ` failed: ${failed.join('; ')} |` : ''),
      );
    }
  } finally {
    lab.destroy();
  }
}
process.stdout.write(
  [
    `- date: ${started} – ${new Date().toISOString()}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at the end`,
    `- machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Linux ${release()}, Node ${process.version}`,
    '',
    "| what | median | max | trials | target | lost | split brain | the client's longest gap: median / max |",
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n'),
);
