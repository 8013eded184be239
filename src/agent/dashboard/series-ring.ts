/** One chart line as the page draws it: times (ms since the epoch) and values, oldest first. */
export interface SeriesPoints {
  readonly t: number[];
  /** null: no value at that time (a gap in the line). */
  readonly v: (number | null)[];
}

/** How many lines an agent keeps at most: per node and per slot, a cluster has a few dozen. */
export const MAX_SERIES = 64;

/**
 * The last `capacity` samples of every series, each in two fixed typed arrays that wrap around: the
 * minutes before a page was opened are there when it opens, at a cost that does not grow (15 minutes
 * of 1-second samples: 900 × 16 bytes per series, under 1 MiB for MAX_SERIES of them). A series not
 * written for a whole window is dropped, so that the nodes and slots that went away make room.
 */
export class SeriesRings {
  private readonly rings = new Map<
    string,
    { t: Float64Array; v: Float64Array; next: number; size: number }
  >();

  constructor(
    readonly capacity: number,
    /** How long a series is kept without a sample (ms): the window the page shows. */
    readonly windowMs: number,
  ) {}

  /** Adds a sample to `key`'s line; a null value is a gap. A new series past MAX_SERIES is not kept. */
  record(key: string, at: number, value: number | null): void {
    let ring = this.rings.get(key);
    if (!ring) {
      if (this.rings.size >= MAX_SERIES) return;
      ring = { t: new Float64Array(this.capacity), v: new Float64Array(this.capacity), next: 0, size: 0 };
      this.rings.set(key, ring);
    }
    ring.t[ring.next] = at;
    ring.v[ring.next] = value ?? Number.NaN;
    ring.next = (ring.next + 1) % this.capacity;
    ring.size = Math.min(ring.size + 1, this.capacity);
  }

  /** Every series' samples after `since` (ms since the epoch), oldest first; drops the stale ones. */
  points(since = -Infinity, now = Date.now()): Record<string, SeriesPoints> {
    const out: Record<string, SeriesPoints> = {};
    for (const [key, ring] of this.rings) {
      const newest = ring.t[(ring.next - 1 + this.capacity) % this.capacity] as number;
      if (now - newest > this.windowMs) {
        this.rings.delete(key);
        continue;
      }
      const t: number[] = [];
      const v: (number | null)[] = [];
      for (let i = 0; i < ring.size; i++) {
        const at = (ring.next - ring.size + i + this.capacity) % this.capacity;
        const time = ring.t[at] as number;
        if (time <= since) continue;
        const value = ring.v[at] as number;
        t.push(time);
        v.push(Number.isNaN(value) ? null : value);
      }
      if (t.length > 0) out[key] = { t, v };
    }
    return out;
  }

  /** The bytes the samples take (the typed arrays), for the agent's memory budget. */
  bytes(): number {
    return this.rings.size * this.capacity * 2 * Float64Array.BYTES_PER_ELEMENT;
  }
}
