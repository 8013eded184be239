import { checkHistory } from './check-history.js';
import type { LossAllowed, Verdict } from './check-history.js';
import type { Lab } from './lab.js';
import { labFailedOver, labSettled } from './lab-faults.js';
import type { LabFault } from './lab-faults.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
    try {
      await fault.inject(lab, lab.host(leaderBefore));
      if (fault.failsOver) await labFailedOver(lab, leaderBefore, 30_000);
      else await sleep(fault.holdMs);
    } finally {
      // Healed even when no other leader came: the next run must not start on a broken lab.
      await fault.heal(lab, lab.host(leaderBefore));
    }
    const leaderAfter = await labSettled(lab, 90_000);
    // Writes on the cluster as it is now, before the client stops.
    await sleep(1000);
    const h = await client.stop();
    const elsewhere = h.probes
      .filter((p) => p.node !== leaderBefore && p.sentAt >= at)
      .sort((a, b) => a.ackAt - b.ackAt)[0];
    return {
      fault: fault.name,
      leaderBefore,
      leaderAfter,
      verdict: checkHistory({ ...h, faults: [{ at, what: fault.name }] }, new Set(h.committed), o.allowed),
      newPrimaryWriteMs: elsewhere ? elsewhere.ackAt - at : null,
    };
  } catch (err) {
    await client.stop().catch(() => undefined);
    throw err;
  }
}
