/** One chart's data as uPlot takes it: the x values (seconds), then one array per line. */
export type Aligned = [number[], ...(number | null)[][]];

/** A line's samples as the agents send them (ms since the epoch). */
export interface Line {
  readonly t: readonly number[];
  readonly v: readonly (number | null)[];
}

/**
 * Puts lines sampled by different agents at different moments on one x axis: each sample goes to
 * its second; a line with no sample in a second has a gap there. Only seconds within `windowMs`
 * before `now` are kept. Pure, for the page and its tests alike.
 */
export function alignLines(lines: readonly Line[], now: number, windowMs: number): Aligned {
  const from = Math.floor((now - windowMs) / 1000);
  const seconds = new Set<number>();
  for (const l of lines)
    for (const t of l.t) if (Math.floor(t / 1000) >= from) seconds.add(Math.floor(t / 1000));
  const xs = [...seconds].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = lines.map((l) => {
    const y: (number | null)[] = new Array<number | null>(xs.length).fill(null);
    l.t.forEach((t, i) => {
      const at = index.get(Math.floor(t / 1000));
      if (at !== undefined) y[at] = l.v[i] ?? null;
    });
    return y;
  });
  return [xs, ...ys];
}

/**
 * Adds `fresh` samples to `line`, past its newest only (a stream and a full read may overlap), and
 * drops those older than the window: what the page keeps per line.
 */
export function appendLine(line: Line | undefined, fresh: Line, now: number, windowMs: number): Line {
  const t = [...(line?.t ?? [])];
  const v = [...(line?.v ?? [])];
  fresh.t.forEach((at, i) => {
    if (t.length === 0 || at > (t[t.length - 1] as number)) {
      t.push(at);
      v.push(fresh.v[i] ?? null);
    }
  });
  const first = t.findIndex((at) => at >= now - windowMs);
  const cut = first === -1 ? t.length : first;
  return { t: t.slice(cut), v: v.slice(cut) };
}
