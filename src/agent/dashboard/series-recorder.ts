import type { Clock } from '../../cluster/context/clock.js';
import type { AgentState } from '../agent-state.js';
import { dashboardSamples, SAMPLE_EVERY_MS } from './dashboard-samples.js';
import type { RateBase } from './dashboard-samples.js';
import { SeriesRings } from './series-ring.js';

/** The window the page charts. */
export const WINDOW_MS = 15 * 60 * 1000;

/** The agent's rings, fed after each loop with its state (samples a second apart at least). */
export interface SeriesRecorder {
  readonly rings: SeriesRings;
  observe(state: AgentState): void;
}

export function seriesRecorder(clock: Clock): SeriesRecorder {
  const rings = new SeriesRings(WINDOW_MS / SAMPLE_EVERY_MS, WINDOW_MS);
  let base: RateBase | null = null;
  let last = -Infinity;
  return {
    rings,
    observe(state) {
      // Timed by the loop that observed the state, on the monotonic clock; shown by the wall clock.
      const now = state.lastLoopAt;
      if (now - last < SAMPLE_EVERY_MS) return;
      last = now;
      const samples = dashboardSamples(base, state, now);
      base = samples.base;
      const wall = clock.wallNow() - (clock.now() - now);
      for (const [key, value] of samples.values) rings.record(key, wall, value);
    },
  };
}
