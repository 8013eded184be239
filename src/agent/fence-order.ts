/**
 * The fence file between an agent and its watchdog: one order, `{ until, pid, check }`, padded to a
 * fixed length and written in place over the same bytes every loop. A write in place is one system
 * call where a new file renamed over the old was four and a journal entry, a tenth of a leading
 * agent's CPU; the price is that the watchdog may read a write half done, which `check` tells it,
 * and it then keeps the order it read before. Imports nothing: the watchdog loads it too.
 */
export interface FenceOrder {
  /**
   * When, on the machine's monotonic clock (CLOCK_MONOTONIC ms, the same in the agent's process
   * and the watchdog's), the postmaster must no longer run; null: disarmed. Not the wall clock: a
   * wall clock stepped back would put the kill after the lease had run out for the others.
   */
  readonly until: number | null;
  /** The postmaster to kill; null with an `until`: whichever owns the data directory then. */
  readonly pid: number | null;
}

/** Every order takes exactly this many bytes, so a shorter one leaves nothing of a longer one behind. */
export const FENCE_ORDER_BYTES = 96;

/**
 * FNV-1a over the two fields and the clock they are on: a torn read mixes two orders' digits, and
 * this no longer matches; nor does an order of a pgrepl that counted `until` on the wall clock.
 */
function checkOf(o: FenceOrder): number {
  let h = 0x811c9dc5;
  for (const ch of `mono|${o.until}|${o.pid}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

export function encodeFenceOrder(o: FenceOrder): Buffer {
  const text = JSON.stringify({ until: o.until, pid: o.pid, check: checkOf(o) });
  return Buffer.from(text.padEnd(FENCE_ORDER_BYTES, ' '), 'latin1');
}

/** The order in `text`, or null when it is not one whole order (torn, empty, or not ours). */
export function decodeFenceOrder(text: string): FenceOrder | null {
  try {
    const o = JSON.parse(text) as { until?: unknown; pid?: unknown; check?: unknown };
    const until = typeof o.until === 'number' ? o.until : o.until === null ? null : undefined;
    const pid = typeof o.pid === 'number' ? o.pid : o.pid === null ? null : undefined;
    if (until === undefined || pid === undefined) return null;
    return o.check === checkOf({ until, pid }) ? { until, pid } : null;
  } catch {
    return null;
  }
}
