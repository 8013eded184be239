import type { Clock } from '../cluster/context/clock.js';

/** A lease this agent holds, and until when (on the monotonic clock) it is sure to live. */
export interface HeldLease {
  readonly id: string;
  readonly safeUntil: number;
}

/** The lease calls of the HA store the keeper makes. */
export interface LeaseCalls {
  grantLease(ttlSeconds: number): Promise<{ id: string; ttl: number }>;
  renewLease(id: string): Promise<number>;
  revokeLease(id: string): Promise<void>;
}

export interface LeaseKeeperDeps {
  readonly calls: LeaseCalls;
  readonly clock: Clock;
  readonly ttlSeconds: number;
  readonly loopWaitMs: number;
  readonly retryTimeoutMs: number;
  /** Subtracted from every lease's end: for clock rates and the time a kill takes. */
  readonly marginMs: number;
  /** After every renewal or grant (the watchdog's deadline follows it), and when the lease is lost. */
  readonly onChange: (lease: HeldLease | null) => void;
  readonly onError: (err: unknown) => void;
}

/**
 * The agent's lease, renewed on a timer of its own: every `loopWait`, and once more at once when
 * a renewal fails, each request bounded by `retryTimeout` (the etcd client's). So renewals are at
 * most loopWait + 2 × retryTimeout apart (≤ ttl, the timing rule), whatever the agent's loop is
 * doing: a promotion slowed by a replay backlog, a CHECKPOINT under load, a slow spec re-read.
 * A lease is counted from when its renewal was *sent* (etcd extends it when it receives it, which
 * is later), minus a margin; on the monotonic clock, which a wall clock step does not move.
 */
export class LeaseKeeper {
  private lease: HeldLease | null = null;
  /**
   * The last lease this keeper gave up as possibly run out, unrenewed: etcd may still hold it (and
   * a key on it) until its next expiry check, and no other agent renews it.
   */
  lastLostId: string | null = null;
  private running: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly d: LeaseKeeperDeps) {}

  /** The lease while it is sure to live; null before the first grant and once it may have run out. */
  get current(): HeldLease | null {
    if (this.lease && this.lease.safeUntil <= this.d.clock.now()) this.lost();
    return this.lease;
  }

  /** The first renewal (a grant), then renewals every loopWait until `stop` is aborted. */
  async start(stop: AbortSignal): Promise<void> {
    if (this.running) return;
    this.running = (async () => undefined)();
    await this.renewOnce();
    this.running = this.loop(stop);
  }

  /** Ends the renewals started by start() (after `stop` was aborted). */
  async stopped(): Promise<void> {
    await this.running;
  }

  /** Renews (or grants) now, outside the timer: a loop that needs a lease sooner. */
  renewSoon(): void {
    this.wake?.();
  }

  /**
   * Takes over `id`, a lease an earlier run of this agent held its leader key on (any client may
   * renew a lease it knows): the key lives on under a healthy primary. False when it had expired.
   */
  async adopt(id: string): Promise<boolean> {
    if (this.lease?.id === id) return true;
    const sentAt = this.d.clock.now();
    const ttl = await this.d.calls.renewLease(id);
    if (ttl <= 0) return false;
    const old = this.lease;
    this.set({ id, safeUntil: this.safeUntil(sentAt, ttl) });
    if (old) await this.d.calls.revokeLease(old.id).catch(() => undefined);
    return true;
  }

  /** Revokes the lease (a clean stop): its leader key and member record go at once. */
  async revoke(): Promise<void> {
    const lease = this.lease;
    this.lost();
    if (lease) await this.d.calls.revokeLease(lease.id);
  }

  /** One renewal, retried once at once if it fails. */
  async renewOnce(): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const sentAt = this.d.clock.now();
      try {
        const held = this.lease;
        if (held) {
          const ttl = await this.d.calls.renewLease(held.id);
          if (ttl > 0) return this.set({ id: held.id, safeUntil: this.safeUntil(sentAt, ttl) });
          // Expired while unrenewed: whatever lived on it is gone; a new one is granted at once.
          this.lost();
        }
        const granted = await this.d.calls.grantLease(this.d.ttlSeconds);
        return this.set({ id: granted.id, safeUntil: this.safeUntil(sentAt, granted.ttl) });
      } catch (err) {
        this.d.onError(err);
        // Not dropped: the lease is still alive until safeUntil, whatever this request's fate.
        void this.current;
      }
    }
  }

  private async loop(stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.d.clock.sleep(this.d.loopWaitMs, stop).then(resolve, resolve);
      });
      this.wake = null;
      if (!stop.aborted) await this.renewOnce();
    }
  }

  private safeUntil(sentAt: number, ttl: number): number {
    return sentAt + ttl * 1000 - this.d.marginMs;
  }

  private set(lease: HeldLease): void {
    this.lease = lease;
    this.d.onChange(lease);
  }

  private lost(): void {
    if (this.lease === null) return;
    this.lastLostId = this.lease.id;
    this.lease = null;
    this.d.onChange(null);
  }
}
