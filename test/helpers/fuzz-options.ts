/**
 * fast-check's options for the fuzz tests: a fixed seed by default, so the suite runs the same
 * inputs every time (a failure there is a defect to fix, never a flake); `npm run fuzz` sets
 * PGREPL_FUZZ_SEED=random and more runs to look further. A failing run prints its seed, and
 * PGREPL_FUZZ_SEED=<that seed> replays it.
 */
export function fuzzOptions(defaultRuns: number): { numRuns: number; seed?: number } {
  const env = process.env;
  const numRuns = Number(env['PGREPL_FUZZ_RUNS'] ?? defaultRuns);
  const seed = env['PGREPL_FUZZ_SEED'] ?? '13';
  return seed === 'random' ? { numRuns } : { numRuns, seed: Number(seed) };
}
