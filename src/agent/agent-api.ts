import type { LogicalStatus } from '../cluster/operations/read-logical-status.js';
import { readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { PgreplError, toPgreplError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { Clock } from '../cluster/context/clock.js';
import type { AgentState } from './agent-loop.js';
import type { AgentOperations } from './agent-operations.js';
import { agentMetrics } from './agent-metrics.js';
import type { ApiBodies } from './api-bodies.js';
import { bearerMatches } from '../ha/api-token.js';
import { answerCheck, CHECK_PATHS } from './health-checks.js';
import type { CheckPath } from './health-checks.js';
import type { DashboardHttp, DashboardSource } from './dashboard/dashboard-http.js';

/** What the mutating endpoints ask of the whole cluster, through etcd (as the CLI's commands do). */
export interface ClusterRequests {
  switchover(to: string | undefined): Promise<object>;
  failover(to: string | undefined, force: boolean): Promise<object>;
  pause(on: boolean): Promise<object>;
}

export interface AgentApiOptions {
  readonly host: string;
  readonly port: number;
  readonly ttlMs: number;
  readonly state: () => AgentState;
  /** The agent's clock: its state's times are on its monotonic side. */
  readonly clock: Clock;
  /** The last scheduled backup that succeeded, while this agent keeps the schedule (it leads). */
  readonly lastBackup?: () => { readonly endedAt: number; readonly type: string } | null;
  /** Logical replication as this node has it while primary (null otherwise), for /metrics. */
  readonly logical?: () => Promise<LogicalStatus | null>;
  /** What `/readiness` allows a standby without `?lag=`. */
  readonly maximumLagOnFailover: number;
  /** Every node's server, for `/status` (a client that follows the leader connects there). */
  readonly nodes: () => readonly { readonly name: string; readonly host: string; readonly port: number }[];
  /** The node's tags for `?tag_KEY=VALUE` (Patroni's names: nofailover, failover_priority). */
  readonly nodeTags: () => Readonly<Record<string, string>>;
  /** The bearer token of the mutating endpoints; null: there is no token file, they refuse every request. */
  readonly token: string | null;
  readonly tokenFile: string;
  readonly operations: AgentOperations;
  readonly cluster: ClusterRequests;
  /** A leader without etcd asks this node to promise not to promote (failsafe): why not, or null. */
  readonly failsafe: (leader: string) => string | null;
  /** The page under /ui and its data; absent: no page is served. */
  readonly dashboard?: DashboardSource | undefined;
  /** Serve https:// with this certificate and key (files, read again when they change); absent: http://. */
  readonly tls?: { readonly cert: string; readonly key: string } | undefined;
}

/** The HTTP status of a refusal: the request was fine, the cluster's state was not. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  E_UNAUTHORIZED: 401,
  E_USAGE: 400,
  E_UNKNOWN_NODE: 400,
  E_TIMEOUT: 504,
  E_INTERNAL: 500,
  E_ETCD: 503,
  E_SQL: 500,
  E_COMMAND_FAILED: 500,
};

/** A running API: `close()` ends it and every connection kept alive to it. */
export interface AgentApi {
  close(): Promise<void>;
}

interface Answer {
  readonly status: number;
  readonly type: string;
  readonly body: string;
}

const json = (status: number, value: unknown): Answer => ({
  status,
  type: 'application/json; charset=utf-8',
  body: JSON.stringify(value),
});

/** Larger request bodies are refused: every body the API takes is a few fields. */
const MAX_BODY_BYTES = 64 * 1024;

const refusal = (status: number, message: string): Answer =>
  json(status, { code: status === 401 ? 'E_UNAUTHORIZED' : 'E_USAGE', message });

const tooLarge = refusal(413, `a request body is at most ${MAX_BODY_BYTES} bytes`);

/**
 * The agent's HTTP API: the load-balancer checks with Patroni's paths and codes (200 or 503, HEAD
 * too), so HAProxy configs carry over; `/status` (JSON) and `/metrics` (Prometheus text); the
 * mutating POSTs behind the bearer token. It is written on node:http rather than a framework: a
 * dozen fixed routes need no router, and Fastify alone added about 15 MiB to the resident size of
 * an idle agent, whose target is 50 MiB in all.
 */
export async function startAgentApi(o: AgentApiOptions): Promise<AgentApi> {
  const metrics = agentMetrics(o.state, o.clock, o.tls?.cert, o.lastBackup, o.logical);
  const checks = new Set<string>(CHECK_PATHS);
  const mutating =
    <K extends keyof ApiBodies>(kind: K, run: (b: z.output<ApiBodies[K]>) => Promise<object>) =>
    async (raw: string): Promise<Answer> => {
      try {
        const { API_BODIES } = await import('./api-bodies.js');
        const parsed = API_BODIES[kind].safeParse(parseBody(raw));
        if (!parsed.success)
          throw new PgreplError(
            'E_USAGE',
            `bad request body: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`,
          );
        return json(200, await run(parsed.data as z.output<ApiBodies[K]>));
      } catch (err) {
        const e = toPgreplError(err);
        return json(STATUS[e.code] ?? 409, { code: e.code, message: e.message });
      }
    };
  const posts: Record<string, (raw: string) => Promise<Answer>> = {
    '/restart': mutating('none', () => o.operations.restart()),
    '/reload': mutating('none', () => o.operations.reload()),
    '/stop': mutating('stop', (b) => o.operations.stop(b.mode)),
    '/start': mutating('none', () => o.operations.start()),
    '/leave': mutating('none', () => o.operations.leave()),
    '/switchover': mutating('switchover', (b) => o.cluster.switchover(b.to)),
    '/failover': mutating('failover', (b) => o.cluster.failover(b.to, b.force)),
    '/pause': mutating('none', () => o.cluster.pause(true)),
    '/unpause': mutating('none', () => o.cluster.pause(false)),
    '/failsafe': mutating('failsafe', (b) => {
      const refused = o.failsafe(b.leader);
      if (refused !== null)
        throw new PgreplError('E_FAILSAFE_REFUSED', `no failsafe promise to ${b.leader}: ${refused}`);
      return Promise.resolve({ promised: true, leader: b.leader });
    }),
  };
  const get = async (path: string, query: URLSearchParams): Promise<Answer | null> => {
    if (checks.has(path)) {
      const text = query.get('lag');
      const lag = text === null ? undefined : parseLag(text);
      if (lag === null)
        return json(400, { error: `lag must be a number of bytes (or kB, MB, GB, TB), not "${text}"` });
      const mode = query.get('mode');
      if (mode !== null && mode !== 'apply' && mode !== 'write')
        return json(400, { error: `mode must be apply or write, not "${mode}"` });
      const tags = Object.fromEntries(
        [...query].filter(([k]) => k.startsWith('tag_')).map(([k, v]) => [k.slice('tag_'.length), v]),
      );
      const a = answerCheck(path as CheckPath, o.state(), {
        now: o.clock.now(),
        ttlMs: o.ttlMs,
        maximumLagOnFailover: o.maximumLagOnFailover,
        nodeTags: o.nodeTags(),
        query: {
          maxLagBytes: lag,
          replicationState: query.get('replication_state') ?? undefined,
          tags,
          mode: mode ?? undefined,
        },
      });
      return json(a.ok ? 200 : 503, { ok: a.ok, why: a.why });
    }
    if (path === '/status') return json(200, { ...statusOf(o.state(), o.clock), nodes: o.nodes() });
    if (path === '/metrics') return { status: 200, type: metrics.contentType, body: await metrics.metrics() };
    return null;
  };
  /** What a request gets before its body is read: null for a POST to read the body of and run. */
  const answerHeaders = async (req: IncomingMessage): Promise<Answer | null> => {
    const url = new URL(req.url ?? '/', 'http://agent');
    const method = req.method ?? 'GET';
    // OPTIONS as HEAD: Patroni's checks answer both with the status alone (HAProxy's `option httpchk`).
    if (method === 'GET' || method === 'HEAD' || (method === 'OPTIONS' && checks.has(url.pathname))) {
      const a = await get(url.pathname, url.searchParams);
      if (a) return a;
    } else if (method === 'POST' && url.pathname in posts) {
      // A browser names the page a request comes from: a page of another site gets nothing, even
      // with the token (which only the agent's own page may hold; it never sits in a URL).
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `${o.tls ? 'https' : 'http'}://${req.headers.host ?? ''}`)
        return json(403, {
          code: 'E_UNAUTHORIZED',
          message: `requests from ${origin} are refused: same origin only`,
        });
      if (o.token === null)
        return refusal(401, `this agent has no API token (${o.tokenFile}): its mutating endpoints are off`);
      if (!bearerMatches(req.headers.authorization, o.token))
        return refusal(
          401,
          `a mutating request needs \`Authorization: Bearer <token>\`, the token in ${o.tokenFile}`,
        );
      if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return tooLarge;
      return null;
    }
    const known =
      checks.has(url.pathname) || url.pathname in posts || ['/status', '/metrics'].includes(url.pathname);
    return known
      ? json(405, { code: 'E_USAGE', message: `${method} is not served on ${url.pathname}` })
      : json(404, { code: 'E_USAGE', message: `no endpoint ${url.pathname}` });
  };
  let page: Promise<DashboardHttp> | undefined;
  const dashboard = o.dashboard;
  const server = await listener(o.tls, (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    // The page's code is loaded the first time someone asks for it: an agent nobody looks at stays small.
    if (dashboard && req.method === 'GET' && (path === '/ui' || path.startsWith('/ui/'))) {
      page ??= import('./dashboard/dashboard-http.js').then((m) => m.dashboardHttp(dashboard));
      void page.then((p) => p.handle(req, res, new URL(req.url ?? '/', 'http://agent')));
      return;
    }
    const send = (a: Answer, close: boolean) => {
      res.writeHead(a.status, {
        'content-type': a.type,
        'content-length': Buffer.byteLength(a.body),
        // A body left unread is not read at all: the connection goes with the answer.
        ...(close ? { connection: 'close' } : {}),
      });
      res.end(req.method === 'HEAD' || req.method === 'OPTIONS' ? undefined : a.body);
    };
    const failed = (err: unknown) => {
      const e = toPgreplError(err);
      return json(500, { code: e.code, message: e.message });
    };
    // Who asks and what is asked are judged on the headers: an unauthenticated or oversized POST
    // is answered before a byte of its body is buffered.
    void answerHeaders(req)
      .catch(failed)
      .then((early) => {
        if (early) {
          send(early, req.method === 'POST');
          if (req.method !== 'POST') req.resume();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        req.on('data', (chunk: Buffer) => {
          if (size > MAX_BODY_BYTES) return;
          size += chunk.length;
          if (size <= MAX_BODY_BYTES) chunks.push(chunk);
          else {
            send(tooLarge, true);
            req.destroy();
          }
        });
        req.on('end', () => {
          const run = posts[new URL(req.url ?? '/', 'http://agent').pathname];
          void (run ? run(Buffer.concat(chunks).toString('utf8')) : Promise.resolve(null))
            .catch(failed)
            .then((a) => a && send(a, false));
        });
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        void page?.then((p) => p.close());
        server.stop();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** How often a TLS agent looks whether its certificate was renewed on disk (rotate-certs, up). */
const CERT_RECHECK_MS = 10_000;

/**
 * An http server, or an https one on `tls`'s files. node:https is loaded only then (it costs an agent
 * ~1 MiB), and the files are read again when they change, so a renewed certificate is served
 * without a restart, as PostgreSQL does at a reload. `stop` ends that watch.
 */
async function listener(
  tls: AgentApiOptions['tls'],
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Server & { stop(): void }> {
  if (!tls) return Object.assign(createServer(handle), { stop: () => undefined });
  const https = await import('node:https');
  const stamp = () => `${statSync(tls.cert).mtimeMs}:${statSync(tls.key).mtimeMs}`;
  const files = () => ({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) });
  let seen = stamp();
  const server = https.createServer(files(), handle);
  const timer = setInterval(() => {
    try {
      const now = stamp();
      if (now === seen) return;
      server.setSecureContext(files());
      // Only once served: a key and certificate caught half-replaced are read again next time.
      seen = now;
    } catch {
      // a file being replaced: the next look reads it
    }
  }, CERT_RECHECK_MS);
  timer.unref();
  return Object.assign(server, { stop: () => clearInterval(timer) });
}

/** A POST body: empty means no fields; anything else must be a JSON object. */
function parseBody(raw: string): unknown {
  if (raw.trim() === '') return {};
  try {
    return JSON.parse(raw) as unknown;
  } catch (err) {
    throw new PgreplError('E_USAGE', 'bad request body: it is not JSON', { cause: err });
  }
}

/** `?lag=` as Patroni takes it: bytes, or with a kB/MB/GB/TB unit. null when it is neither. */
export function parseLag(text: string): number | null {
  const m = /^(\d+)\s*(B|kB|MB|GB|TB)?$/i.exec(text.trim());
  if (!m) return null;
  const power = ['b', 'kb', 'mb', 'gb', 'tb'].indexOf((m[2] ?? 'B').toLowerCase());
  return Number(m[1]) * 1024 ** power;
}

/** What GET /status answers: this node, its agent's decision, and the cluster as etcd has it. */
export function statusOf(s: AgentState, clock: Clock) {
  const wall = (mono: number) => new Date(clock.wallNow() - (clock.now() - mono)).toISOString();
  const leader = s.ha?.view.leader ?? null;
  return {
    node: s.node,
    pid: process.pid,
    server: s.self?.local ?? null,
    postmasterPid: s.self?.pid ?? null,
    decision: s.decision?.kind ?? null,
    reason: s.decision?.reason ?? null,
    leader: leader ? { node: leader.node, term: leader.term, ready: leader.ready } : null,
    leaseSecondsLeft: Math.max(0, (s.leaseSafeUntil - clock.now()) / 1000),
    paused: s.ha?.view.paused ?? null,
    lastLeaderLsn: s.ha?.view.lastLeaderLsn ?? null,
    sync: s.ha?.view.sync ?? null,
    members: s.ha ? Object.fromEntries(s.ha.members) : null,
    lastLoopAt: s.lastLoopAt === 0 ? null : wall(s.lastLoopAt),
    lastLoopMs: s.lastLoopMs,
    etcdErrors: s.etcdErrors,
    promotions: s.promotions,
    lastFailoverMs: s.lastFailoverMs,
  };
}
