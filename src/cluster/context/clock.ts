import { monotonicNow } from '../../monotonic-now.js';

/**
 * Time as operations see it: read and waited on through the context, never through globals, so
 * that the agent's lease arithmetic and the tests of decisions that depend on time can be given a
 * clock of their own.
 */
export interface Clock {
  /**
   * Milliseconds on the machine's monotonic clock (CLOCK_MONOTONIC, shared by all its processes):
   * every deadline and duration. A wall clock stepped back or forward (NTP, an operator) moves
   * none of them, and the fence watchdog, another process, reads the same clock.
   */
  now(): number;
  /** Milliseconds since the epoch: only for what is shown, or read on other hosts (timestamps). */
  wallNow(): number;
  /** Waits `ms`; rejects with the signal's reason as soon as `signal` is aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: monotonicNow,
  wallNow: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};
