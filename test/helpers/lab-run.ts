import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkHistory } from './check-history.js';
import type { LossAllowed, Verdict } from './check-history.js';
import type { Lab } from './lab.js';
import { labFailedOver, labSettled } from './lab-faults.js';
import type { LabFault } from './lab-faults.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The lab's timeline (faults.log beside the hosts' logs, kept with them by PGREPL_LAB_KEEP): when
 * each fault began, was seen to fail over, was healed, and the probes' writes around any split
 * brain, to read against the agents' and etcd's logs.
 */
function timeline(lab: Lab, line: string): void {
  appendFileSync(join(lab.base, 'faults.log'), `${new Date().toISOString()} ${line}\n`);
}

export interface FaultRun {
  readonly fault: string;
  readonly leaderBefore: string;
  readonly leaderAfter: string;
  readonly verdict: Verdict;
  /**
   * From the fault to the first write another node than the old leader acknowledged to the probes
   * (sent after the fault): a failover's time as the benchmarks count it; null when none did.
   */
  readonly newPrimaryWriteMs: number | null;
}

/**
 * One fault on the lab's leader host under the lab client: settle, write for `leadMs`, inject,
 * wait for a new leader (or `holdMs`), heal, settle again, write for a second more, judge.
 */
export async function runFault(
  lab: Lab,
  fault: LabFault,
  o: { leadMs?: number; allowed?: LossAllowed } = {},
): Promise<FaultRun> {
  const leaderBefore = await labSettled(lab, 90_000);
  const client = await lab.client();
  try {
    await sleep(o.leadMs ?? 1000);
    const at = Date.now();
    timeline(lab, `inject: ${fault.name} (leader ${leaderBefore})`);
    try {
      await fault.inject(lab, lab.host(leaderBefore));
      if (fault.failsOver) timeline(lab, `failed over to ${await labFailedOver(lab, leaderBefore, 30_000)}`);
      else await sleep(fault.holdMs);
    } finally {
      // Healed even when no other leader came: the next run must not start on a broken lab.
      await fault.heal(lab, lab.host(leaderBefore));
      timeline(lab, 'healed');
    }
    const leaderAfter = await labSettled(lab, 90_000);
    timeline(lab, `settled: ${leaderAfter} leads`);
    // Writes on the cluster as it is now, before the client stops.
    await sleep(1000);
    const h = await client.stop();
    const elsewhere = h.probes
      .filter((p) => p.node !== leaderBefore && p.sentAt >= at)
      .sort((a, b) => a.ackAt - b.ackAt)[0];
    const verdict = checkHistory(
      { ...h, faults: [{ at, what: fault.name }] },
      new Set(h.committed),
      o.allowed,
    );
    for (const b of verdict.splitBrain) {
      timeline(lab, `split brain: ${b.why}`);
      const around = h.probes
        .filter((p) => Math.abs(p.ackAt - b.at) < 3000)
        .sort((x, y) => x.ackAt - y.ackAt);
      for (const p of around)
        timeline(
          lab,
          `  probe ${p.node}: sent ${new Date(p.sentAt).toISOString()}, acknowledged ${new Date(p.ackAt).toISOString()}`,
        );
    }
    return {
      fault: fault.name,
      leaderBefore,
      leaderAfter,
      verdict,
      newPrimaryWriteMs: elsewhere ? elsewhere.ackAt - at : null,
    };
  } catch (err) {
    await client.stop().catch(() => undefined);
    throw err;
  }
}
