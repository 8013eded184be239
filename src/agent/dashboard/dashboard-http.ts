import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requestJson } from '../../dcs/http-json.js';
import type { TlsMaterial } from '../../dcs/http-json.js';
import type { DashboardView } from './dashboard-view.js';
import type { SeriesPoints, SeriesRings } from './series-ring.js';

/** Where the page's data comes from: the cluster's view, and this process's and the agents' series. */
export interface DashboardSource {
  view(): Promise<DashboardView>;
  readonly rings: SeriesRings;
  /** The other agents' API base URLs (their series make the cluster's charts). */
  peers(): readonly string[];
  readonly tls?: TlsMaterial | undefined;
  /** Whether mutating requests are possible at all (the agent has an API token). */
  readonly actions: boolean;
  /** The node of the agent that serves the page (its restart is offered); null without one. */
  readonly self: string | null;
}

/** How often the stream sends the view and the new samples. */
export const STREAM_EVERY_MS = 1000;
/** A peer's series that do not come within this long are left out of that tick. */
const PEER_TIMEOUT_MS = 800;

/**
 * The page's headers: nothing from another origin, no inline script or style element, no framing,
 * no referrer. uPlot sizes its elements through the CSSOM, which `style-src 'self'` allows.
 */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>pgrepl</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/app.css">
<script type="module" src="/ui/app.js"></script>
</head>
<body><main id="app" aria-live="polite"></main></body>
</html>
`;

/** The bundled page (dist/ui/), found from this module whether it runs bundled or as tsc's output. */
function assetsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['.', '..', '../..', '../../..']) {
    const dir = join(here, up, 'ui');
    if (existsSync(join(dir, 'app.js'))) return dir;
  }
  return join(here, 'ui');
}

/** Every line's new samples, merged from several sources (a key may come from two agents over time). */
export function mergePoints(parts: readonly Record<string, SeriesPoints>[]): Record<string, SeriesPoints> {
  const byKey = new Map<string, [number, number | null][]>();
  for (const part of parts)
    for (const [key, p] of Object.entries(part)) {
      const list = byKey.get(key) ?? [];
      p.t.forEach((t, i) => list.push([t, p.v[i] ?? null]));
      byKey.set(key, list);
    }
  const out: Record<string, SeriesPoints> = {};
  for (const [key, list] of byKey) {
    list.sort((a, b) => a[0] - b[0]);
    out[key] = { t: list.map(([t]) => t), v: list.map(([, v]) => v) };
  }
  return out;
}

/**
 * Serves the page under /ui: the HTML, its script and style, the view and series as JSON, and a
 * stream of both (server-sent events). Loaded by the API the first time /ui is asked for.
 */
export function dashboardHttp(src: DashboardSource) {
  const assets = new Map<string, Buffer>();
  const clients = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | undefined;
  /** Per peer, the newest sample time it sent: the next tick asks for what came after. */
  const cursors = new Map<string, number>();
  let ownCursor = Date.now();

  const peerSeries = async (base: string, since: number): Promise<Record<string, SeriesPoints>> => {
    try {
      const res = await requestJson(
        `${base}/ui/api/series?own=1&since=${since}`,
        null,
        AbortSignal.timeout(PEER_TIMEOUT_MS),
        {},
        src.tls,
      );
      return res.status === 200 ? (res.body as Record<string, SeriesPoints>) : {};
    } catch {
      // An agent that does not answer: the view shows it down; its lines pause.
      return {};
    }
  };

  const newestOf = (points: Record<string, SeriesPoints>, before: number) =>
    Math.max(before, ...Object.values(points).map((p) => p.t[p.t.length - 1] ?? before));

  /** The whole cluster's series since `since` (every agent's), or this process's own. */
  const series = async (since: number, own: boolean) => {
    const mine = src.rings.points(since);
    if (own) return mine;
    return mergePoints([mine, ...(await Promise.all(src.peers().map((p) => peerSeries(p, since))))]);
  };

  const send = (res: ServerResponse, event: string, data: unknown) =>
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);

  /** One view and one set of new samples a tick, whoever watches: the cost does not grow with pages. */
  const tick = async () => {
    const [view, fresh] = await Promise.all([
      src.view().catch((err: unknown) => ({ error: (err as Error).message })),
      Promise.all([
        (() => {
          const mine = src.rings.points(ownCursor);
          ownCursor = newestOf(mine, ownCursor);
          return mine;
        })(),
        ...src.peers().map(async (p) => {
          const got = await peerSeries(p, cursors.get(p) ?? Date.now() - STREAM_EVERY_MS * 5);
          cursors.set(p, newestOf(got, cursors.get(p) ?? 0));
          return got;
        }),
      ]).then(mergePoints),
    ]);
    for (const res of clients) {
      send(res, 'view', view);
      send(res, 'series', fresh);
    }
  };

  const loop = () => {
    timer = setTimeout(() => {
      void tick().finally(() => {
        if (clients.size > 0) loop();
        else timer = undefined;
      });
    }, STREAM_EVERY_MS);
  };

  const stream = (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      connection: 'keep-alive',
    });
    // A lost connection is tried again by the browser after this long.
    res.write('retry: 2000\n\n');
    clients.add(res);
    req.on('close', () => clients.delete(res));
    if (timer === undefined) {
      ownCursor = Date.now();
      loop();
    }
  };

  const json = (res: ServerResponse, status: number, value: unknown) => {
    const body = JSON.stringify(value);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      ...PAGE_HEADERS,
    });
    res.end(body);
  };

  const asset = async (res: ServerResponse, name: string, type: string) => {
    let body = assets.get(name);
    if (!body) {
      body = await readFile(join(assetsDir(), name));
      assets.set(name, body);
    }
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, ...PAGE_HEADERS });
    res.end(body);
  };

  return {
    /** Answers a GET under /ui. */
    async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
      try {
        switch (url.pathname) {
          case '/ui':
          case '/ui/':
            res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...PAGE_HEADERS });
            return void res.end(PAGE);
          case '/ui/app.js':
            return await asset(res, 'app.js', 'text/javascript; charset=utf-8');
          case '/ui/app.css':
            return await asset(res, 'app.css', 'text/css; charset=utf-8');
          case '/ui/api/view':
            return json(res, 200, { ...(await src.view()), actions: src.actions, self: src.self });
          case '/ui/api/series': {
            const since = Number(url.searchParams.get('since') ?? '-Infinity');
            return json(
              res,
              200,
              await series(Number.isNaN(since) ? -Infinity : since, url.searchParams.has('own')),
            );
          }
          case '/ui/api/stream':
            return stream(req, res);
          default:
            return json(res, 404, { code: 'E_USAGE', message: `no page ${url.pathname}` });
        }
      } catch (err) {
        if (!res.headersSent) json(res, 500, { code: 'E_INTERNAL', message: (err as Error).message });
        else res.end();
      }
    },
    close(): void {
      clearTimeout(timer);
      for (const res of clients) res.end();
      clients.clear();
    },
  };
}

export type DashboardHttp = ReturnType<typeof dashboardHttp>;
