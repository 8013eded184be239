import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { Aligned } from '../align-series.js';

/** A moment to mark on a chart: a failover, a switchover, a rejoin, with its reason. */
export interface Mark {
  readonly x: number;
  readonly label: string;
}

const PALETTE = ['#2f7ed8', '#e4572e', '#17a673', '#a05cd5', '#d69e00', '#00a3b4'];

/** Draws each mark as a dashed vertical line with its label at the top. */
function marksPlugin(marks: () => readonly Mark[]): uPlot.Plugin {
  return {
    hooks: {
      draw: (u) => {
        const { ctx } = u;
        const { top, height } = u.bbox;
        ctx.save();
        ctx.strokeStyle = getComputedStyle(u.root).getPropertyValue('--mark') || '#c00';
        ctx.fillStyle = ctx.strokeStyle;
        ctx.setLineDash([4, 4]);
        ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
        // Labels that would overlap the one before are left out; their lines stay (the history lists them).
        let labelEnd = -Infinity;
        for (const m of [...marks()].sort((a, b) => a.x - b.x)) {
          const x = Math.round(u.valToPos(m.x, 'x', true));
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          if (x + 4 < labelEnd) continue;
          ctx.fillText(m.label, x + 4, top + 12 * devicePixelRatio);
          labelEnd = x + 4 + ctx.measureText(m.label).width + 8 * devicePixelRatio;
        }
        ctx.restore();
      },
    },
  };
}

/** One time-series chart; its size follows its container's width. */
export function Chart(p: {
  readonly title: string;
  readonly names: readonly string[];
  readonly data: Aligned;
  readonly marks: readonly Mark[];
  readonly format: (v: number) => string;
  readonly empty: string;
  /** The window the x axis spans (seconds since the epoch), the same on every chart. */
  readonly window: readonly [from: number, to: number];
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const marks = useRef(p.marks);
  marks.current = p.marks;
  const span = useRef(p.window);
  span.current = p.window;
  const shape = p.names.join('\u0000');

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: el.clientWidth || 600,
      height: 180,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      // Every chart spans the same time, whatever its own lines hold: a line that began after a
      // failover (the new primary's agent) starts where it began, not at the left edge.
      scales: { x: { time: true, range: () => [...span.current] } },
      axes: [{}, { values: (_u, vals) => vals.map((v) => p.format(v)), size: 84 }],
      series: [
        {},
        ...p.names.map((label, i) => ({
          label,
          stroke: PALETTE[i % PALETTE.length],
          width: 2,
          spanGaps: false,
        })),
      ],
      plugins: [marksPlugin(() => marks.current)],
    };
    const u = new uPlot(opts, p.data as uPlot.AlignedData, el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: el.clientWidth, height: 180 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
    // A chart is made again only when its lines change; new data goes through setData below.
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(p.data as uPlot.AlignedData);
  }, [p.data]);

  return (
    <figure class="chart">
      <figcaption>{p.title}</figcaption>
      {p.data[0].length === 0 ? <p class="empty">{p.empty}</p> : null}
      <div ref={box} role="img" aria-label={p.title} />
    </figure>
  );
}
