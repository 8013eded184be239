import type { HaTimings } from './cluster-spec.js';

/**
 * The agents' timings per profile. A dead leader is noticed when its lease runs out, so `ttl`
 * bounds the failover; renewing every `loopWait` with requests of up to `retryTimeout` leaves a
 * leader two tries before it must fence (Patroni's rule, loopWait + 2 × retryTimeout ≤ ttl).
 * `default` rides out a stall of ~3 s (a saturated CPU, a slow etcd fsync); `fast` ~1.5 s, for
 * quiet machines and a local etcd with short heartbeats.
 */
export const HA_PROFILES: Readonly<Record<'default' | 'fast', HaTimings>> = Object.freeze({
  default: Object.freeze({ ttlSeconds: 4, loopWaitMs: 1000, retryTimeoutMs: 1500 }),
  fast: Object.freeze({ ttlSeconds: 2, loopWaitMs: 500, retryTimeoutMs: 750 }),
});

/** Why the timings cannot work (a leader could lose its key while it still renews in time), or null. */
export function timingsProblem(t: HaTimings): string | null {
  const needed = t.loopWaitMs + 2 * t.retryTimeoutMs;
  if (needed > t.ttlSeconds * 1000)
    return (
      `loopWait + 2 × retryTimeout is ${needed / 1000} s, more than ttl ${t.ttlSeconds} s: ` +
      'a leader that renews late and retries once would lose its key while still running'
    );
  return null;
}
