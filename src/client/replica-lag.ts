/**
 * How far behind a replica is, judged on this process's own clock: the primary's WAL position is
 * sampled at each topology refresh, and a replica's lag in time is how long ago the primary first
 * stood past the position the replica has replayed. No host's wall clock is compared with
 * another's (replication timestamps would be), so a skewed server clock changes nothing here.
 */
export interface PositionSample {
  /** When the position was read (monotonic ms). */
  readonly at: number;
  readonly lsn: bigint;
}

/** The primary's recent positions, oldest first, at most `capacity` of them. */
export class PrimaryHistory {
  private samples: PositionSample[] = [];

  constructor(private readonly capacity = 120) {}

  /** Records a read of the primary's position; a new primary (a lower position) starts afresh. */
  add(sample: PositionSample): void {
    const last = this.samples[this.samples.length - 1];
    if (last && sample.lsn < last.lsn) this.samples = [];
    this.samples.push(sample);
    if (this.samples.length > this.capacity) this.samples.shift();
  }

  clear(): void {
    this.samples = [];
  }

  /** The primary's latest known position; null before any sample. */
  get latest(): PositionSample | null {
    return this.samples[this.samples.length - 1] ?? null;
  }

  /**
   * A replica's lag at `replayed`: bytes behind the latest sample, and ms since the first sample
   * past it (since the oldest one kept when every sample is past it: at least that long). Null
   * values: no sample yet.
   */
  lagOf(replayed: bigint, now: number): { bytes: number | null; ms: number | null } {
    const latest = this.latest;
    if (latest === null) return { bytes: null, ms: null };
    const bytes = latest.lsn > replayed ? Number(latest.lsn - replayed) : 0;
    const firstPast = this.samples.find((s) => s.lsn > replayed);
    return { bytes, ms: firstPast === undefined ? 0 : Math.max(0, now - firstPast.at) };
  }
}
