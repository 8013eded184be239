import type { Clock } from '../cluster/context/clock.js';
import type { HaStore } from '../dcs/ha-store.js';
import type { HaState } from '../dcs/ha-values.js';
import { watchStaleness } from './watch-staleness.js';

/** What the watch needs of its agent. */
export interface EtcdWatchHost {
  readonly store: HaStore;
  readonly me: string;
  readonly clock: Clock;
  readonly loopWaitMs: number;
  /** A switchover is under way: the others' records tell who streams from the target, and when. */
  readonly switchoverPending: () => boolean;
  /** Something the agent's decisions turn on changed: the loop runs now. */
  readonly changed: (leaderGone: boolean) => void;
  failed(during: string, err: unknown): void;
  recovered(during: string): void;
}

/**
 * The agent's watch on the cluster's keys: it wakes the loop at once when the leader key, the pause,
 * a request or this node's stop hold changes (and, during a switchover, another member's record),
 * and is opened anew when it broke or went stale (watchStaleness).
 */
export class EtcdWatch {
  /** The watch open now: how to end it, the newest change it delivered, since when reads are ahead. */
  private current: { reopen: AbortController; delivered: number; behindSince: number | null } = {
    reopen: new AbortController(),
    delivered: Number.MAX_SAFE_INTEGER,
    behindSince: null,
  };

  constructor(private readonly h: EtcdWatchHost) {}

  /** Watches until `stop` is aborted, opening the watch again loopWait after it broke. */
  async run(stop: AbortSignal): Promise<void> {
    const { h } = this;
    while (!stop.aborted) {
      const reopen = new AbortController();
      this.current = { reopen, delivered: Number.MAX_SAFE_INTEGER, behindSince: null };
      try {
        const after = await h.store.revision();
        this.current.delivered = after;
        h.recovered('watching etcd');
        await h.store.watch(after, AbortSignal.any([stop, reopen.signal]), (events) => {
          for (const e of events) this.current.delivered = Math.max(this.current.delivered, e.kv.modRevision);
          const seen = events.map((e) => h.store.classify(e, h.me));
          const pending = h.switchoverPending();
          if (!seen.some((e) => e.kind === 'control' || (e.kind === 'member' && pending))) return;
          h.changed(seen.some((e) => e.kind === 'control' && e.leaderGone));
        });
      } catch (err) {
        h.failed('watching etcd', err);
      }
      if (!stop.aborted) await h.clock.sleep(h.loopWaitMs, stop).catch(() => undefined);
    }
  }

  /** Ends a watch that has missed, for too long, a change a loop's read saw; run() opens a new one. */
  check(s: HaState): void {
    const w = this.current;
    const { behindSince, stale } = watchStaleness({
      readRevision: s.changedRevision,
      deliveredRevision: w.delivered,
      behindSince: w.behindSince,
      now: this.h.clock.now(),
      limitMs: Math.max(1000, 2 * this.h.loopWaitMs),
    });
    w.behindSince = behindSince;
    if (!stale) return;
    this.h.failed(
      'watching etcd',
      new Error(
        `the watch delivered nothing past revision ${w.delivered} while reads saw ${s.changedRevision}: opening it anew`,
      ),
    );
    w.reopen.abort();
  }
}
