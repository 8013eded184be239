import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { dashboardHttp } from '../../agent/dashboard/dashboard-http.js';
import { readDashboardView } from '../../agent/dashboard/dashboard-view.js';
import type { DashboardView } from '../../agent/dashboard/dashboard-view.js';
import { viewSamples, SAMPLE_EVERY_MS } from '../../agent/dashboard/dashboard-samples.js';
import type { RateBase } from '../../agent/dashboard/dashboard-samples.js';
import { SeriesRings } from '../../agent/dashboard/series-ring.js';
import { WINDOW_MS } from '../../agent/dashboard/series-recorder.js';
import { PgreplError } from '../../errors.js';
import { commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';

export interface DashboardOptions {
  port?: string;
  open?: boolean;
}

/** The port `dashboard` listens on unless told: above the agents' API ports of the default nodes. */
export const DEFAULT_DASHBOARD_PORT = 7480;

/**
 * `dashboard [--port P] [--open]`: the agents' page, served on loopback from this command's own
 * observation of the cluster (as `status` makes it), for a cluster without agents. Read-only. It
 * samples once a second from when it starts: its charts begin then.
 */
export async function runDashboard(g: GlobalOptions, o: DashboardOptions): Promise<number> {
  const port = Number(o.port ?? DEFAULT_DASHBOARD_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new PgreplError('E_USAGE', `--port takes a TCP port (0–65535; 0: any free one), not "${o.port}"`);
  const ctx = await commandContext(g);
  const rings = new SeriesRings(WINDOW_MS / SAMPLE_EVERY_MS, WINDOW_MS);
  // The page is served the last sample's view: each view is read once, for the charts and the page.
  let latest: Promise<DashboardView> = readDashboardView(ctx);
  let base: RateBase | null = null;
  const sample = async (next = readDashboardView(ctx)) => {
    const view = await next;
    latest = next;
    const s = viewSamples(base, view.status.nodes, ctx.clock.now());
    base = s.base;
    for (const [key, value] of s.values) rings.record(key, ctx.clock.wallNow(), value);
  };
  await sample(latest);
  const page = dashboardHttp({ view: () => latest, rings, peers: () => [], actions: false, self: null });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (
      req.method === 'GET' &&
      (url.pathname === '/' || url.pathname === '/ui' || url.pathname.startsWith('/ui/'))
    )
      return void page.handle(req, res, url.pathname === '/' ? new URL('/ui', url) : url);
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('the page is at /ui\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new PgreplError(
          'E_PORT_IN_USE',
          `the dashboard cannot listen on 127.0.0.1:${port} (${err.message}); choose another with --port`,
          { cause: err },
        ),
      ),
    );
    server.listen(port, '127.0.0.1', resolve);
  });
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : port}/ui`;
  process.stdout.write(
    `pgrepl dashboard of cluster ${ctx.spec.cluster}: ${url} (loopback only; Ctrl-C ends it)\n`,
  );
  if (o.open)
    spawn('xdg-open', [url], { stdio: 'ignore', detached: true })
      .on('error', () => undefined)
      .unref();
  setInterval(() => void sample().catch(() => undefined), SAMPLE_EVERY_MS);
  // It changes nothing: Ctrl-C ends it at once (exit 130), the server and the samples with it.
  return new Promise<number>(() => undefined);
}
