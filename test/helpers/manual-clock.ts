import type { Clock } from '../../src/cluster/context/clock.js';

/** A clock the test moves: sleeps end when it passes their time; the wall clock moves apart. */
export function manualClock() {
  let mono = 1_000_000;
  let wall = 1_700_000_000_000;
  const sleepers: { at: number; done: () => void }[] = [];
  const clock: Clock = {
    now: () => mono,
    wallNow: () => wall,
    sleep: (ms, signal) =>
      new Promise((resolve) => {
        const entry = { at: mono + ms, done: () => resolve() };
        sleepers.push(entry);
        signal?.addEventListener('abort', () => resolve(), { once: true });
      }),
  };
  /** Moves both clocks `ms` on, waking each sleeper whose time came, with the work that follows. */
  const advance = async (ms: number) => {
    const until = mono + ms;
    const settle = async () => {
      for (let i = 0; i < 20; i++) await Promise.resolve();
      await new Promise((r) => setImmediate(r));
    };
    for (;;) {
      await settle();
      sleepers.sort((a, b) => a.at - b.at);
      const next = sleepers[0];
      if (!next || next.at > until) break;
      sleepers.shift();
      wall += next.at - mono;
      mono = next.at;
      next.done();
    }
    wall += until - mono;
    mono = until;
  };
  return { clock, advance, stepWall: (ms: number) => (wall += ms) };
}
