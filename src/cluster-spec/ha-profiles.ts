import type { HaTimings } from './cluster-spec.js';

/**
 * The agents' timings per profile. A dead leader is noticed when its lease runs out, so `ttl`
 * bounds the failover; renewing every `loopWait` with requests of up to `retryTimeout` leaves a
 * leader two tries before it must fence (Patroni's rule, loopWait + 2 × retryTimeout ≤ ttl).
 * `default` rides out a stall of ~3 s (a saturated CPU, a slow etcd fsync); `fast` ~0.6 s, for
 * quiet machines and an etcd with short heartbeats (`up --ha` runs one with 50 ms / 500 ms; one
 * with etcd's defaults grants no lease under 2 s, which the agents then use). etcd revokes an
 * expired lease only at its next 500 ms check, which a TTL of 2 s would put past a 2 s failover.
 */
export const HA_PROFILES: Readonly<Record<'default' | 'fast', HaTimings>> = Object.freeze({
  default: Object.freeze({ ttlSeconds: 4, loopWaitMs: 1000, retryTimeoutMs: 1500 }),
  fast: Object.freeze({ ttlSeconds: 1, loopWaitMs: 250, retryTimeoutMs: 375 }),
});

/**
 * The longest a dead leader should leave the cluster without a writable primary: its lease (ttl),
 * etcd's expiry tick (0.5 s), a loop of the winner (loopWait), and 2 s for the promotion and a
 * client to connect. The fault tests hold every failover to it; BENCHMARKS.md measures what it is.
 */
export function failoverBoundMs(t: HaTimings): number {
  return t.ttlSeconds * 1000 + 500 + t.loopWaitMs + 2000;
}

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
