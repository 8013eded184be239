import type { Clock } from '../cluster/context/clock.js';
import type { ProcessWatch } from '../postgres/process-watch.js';

/**
 * How often a sleeping loop asks whether its postmaster still runs. Polling every 0.1 s was a tenth
 * of an idle agent's CPU; the kept session's end tells of a death sooner.
 */
const POSTMASTER_POLL_MS = 500;

/**
 * The agent loop's pace: a loop every `loopWait`, or sooner when something wakes it (a change in
 * etcd, a dead postmaster, an action that changed the server, an operator's request).
 */
export class LoopPacer {
  private wake: (() => void) | null = null;
  private woke = false;

  constructor(private readonly clock: () => Clock) {}

  /** The next loop runs at once, even if the loop running now has not ended yet. */
  nudge(): void {
    this.woke = true;
    this.wake?.();
  }

  /** Ends a sleep under way (the agent stops), without running another loop. */
  interrupt(): void {
    this.wake?.();
  }

  /** Sleeps `loopWaitMs` from `began`, or less: a nudge, `stop`, or the death of `watched` ends it. */
  async sleepUntilNext(
    began: number,
    loopWaitMs: number,
    stop: AbortSignal,
    watched: ProcessWatch | null,
  ): Promise<void> {
    const clock = this.clock();
    const deadline = began + loopWaitMs;
    while (!stop.aborted && clock.now() < deadline) {
      // A change that came while the loop ran (the new leader's key, say) is acted on at once.
      if (this.woke) {
        this.woke = false;
        return;
      }
      const woken = new Promise<void>((r) => (this.wake = r));
      await Promise.race([woken, clock.sleep(Math.min(POSTMASTER_POLL_MS, deadline - clock.now()))]);
      this.wake = null;
      // A postmaster that died ends the kept session, which wakes this loop; the poll is for one
      // that died while no session was open.
      if (watched !== null && !watched.alive()) return;
    }
    this.woke = false;
  }
}
