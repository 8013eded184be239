import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { PgreplError, toPgreplError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { AgentState } from './agent-loop.js';
import type { AgentOperations } from './agent-operations.js';
import { agentMetrics } from './agent-metrics.js';
import { bearerMatches } from './api-token.js';
import { answerCheck, CHECK_PATHS } from './health-checks.js';

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
  /** The bearer token of the mutating endpoints; null: there is no token file, they refuse every request. */
  readonly token: string | null;
  readonly tokenFile: string;
  readonly operations: AgentOperations;
  readonly cluster: ClusterRequests;
}

const bodies = {
  none: z.strictObject({}),
  stop: z.strictObject({ mode: z.enum(['fast', 'immediate']).default('fast') }),
  switchover: z.strictObject({ to: z.string().min(1).optional() }),
  failover: z.strictObject({ to: z.string().min(1).optional(), force: z.boolean().default(false) }),
};

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

/**
 * The agent's HTTP API: the load-balancer checks with Patroni's paths and codes (200 or 503, HEAD
 * too), so HAProxy configs carry over; `/status` (JSON) and `/metrics` (Prometheus text).
 */
export async function startAgentApi(o: AgentApiOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  const metrics = agentMetrics(o.state);
  for (const path of CHECK_PATHS)
    app.get<{ Querystring: { lag?: string } }>(path, async (req, reply) => {
      const lag = req.query.lag === undefined ? undefined : parseLag(req.query.lag);
      if (lag === null)
        return reply
          .code(400)
          .send({ error: `lag must be a number of bytes (or kB, MB, GB), not "${req.query.lag}"` });
      const a = answerCheck(path, o.state(), { now: Date.now(), ttlMs: o.ttlMs, maxLagBytes: lag });
      return reply.code(a.ok ? 200 : 503).send({ ok: a.ok, why: a.why });
    });
  app.get('/status', async () => statusOf(o.state()));
  const mutating = <B extends z.ZodTypeAny>(
    path: string,
    body: B,
    run: (b: z.output<B>) => Promise<object>,
  ) =>
    app.post(path, async (req, reply) => {
      try {
        if (o.token === null)
          throw new PgreplError(
            'E_UNAUTHORIZED',
            `this agent has no API token (${o.tokenFile}): its mutating endpoints are off`,
          );
        if (!bearerMatches(req.headers.authorization, o.token))
          throw new PgreplError(
            'E_UNAUTHORIZED',
            `a mutating request needs \`Authorization: Bearer <token>\`, the token in ${o.tokenFile}`,
          );
        const parsed = body.safeParse(req.body ?? {});
        if (!parsed.success)
          throw new PgreplError(
            'E_USAGE',
            `bad request body: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`,
          );
        return reply.send(await run(parsed.data));
      } catch (err) {
        return refuse(reply, toPgreplError(err));
      }
    });
  mutating('/restart', bodies.none, () => o.operations.restart());
  mutating('/reload', bodies.none, () => o.operations.reload());
  mutating('/stop', bodies.stop, (b) => o.operations.stop(b.mode));
  mutating('/start', bodies.none, () => o.operations.start());
  mutating('/leave', bodies.none, () => o.operations.leave());
  mutating('/switchover', bodies.switchover, (b) => o.cluster.switchover(b.to));
  mutating('/failover', bodies.failover, (b) => o.cluster.failover(b.to, b.force));
  mutating('/pause', bodies.none, () => o.cluster.pause(true));
  mutating('/unpause', bodies.none, () => o.cluster.pause(false));
  app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));
  await app.listen({ host: o.host, port: o.port });
  return app;
}

function refuse(reply: FastifyReply, err: PgreplError) {
  return reply.code(STATUS[err.code] ?? 409).send({ code: err.code, message: err.message });
}

/** `?lag=` as Patroni takes it: bytes, or with a kB/MB/GB unit. null when it is neither. */
export function parseLag(text: string): number | null {
  const m = /^(\d+)\s*(B|kB|MB|GB)?$/i.exec(text.trim());
  if (!m) return null;
  const unit = (m[2] ?? 'B').toLowerCase();
  const factor = unit === 'kb' ? 1024 : unit === 'mb' ? 1024 ** 2 : unit === 'gb' ? 1024 ** 3 : 1;
  return Number(m[1]) * factor;
}

/** What GET /status answers: this node, its agent's decision, and the cluster as etcd has it. */
export function statusOf(s: AgentState) {
  const leader = s.ha?.view.leader ?? null;
  return {
    node: s.node,
    pid: process.pid,
    server: s.self?.local ?? null,
    postmasterPid: s.self?.pid ?? null,
    decision: s.decision?.kind ?? null,
    reason: s.decision?.reason ?? null,
    leader: leader ? { node: leader.node, term: leader.term, ready: leader.ready } : null,
    leaseSecondsLeft: Math.max(0, (s.leaseSafeUntil - Date.now()) / 1000),
    paused: s.ha?.view.paused ?? null,
    lastLeaderLsn: s.ha?.view.lastLeaderLsn ?? null,
    sync: s.ha?.view.sync ?? null,
    members: s.ha ? Object.fromEntries(s.ha.members) : null,
    lastLoopAt: s.lastLoopAt === 0 ? null : new Date(s.lastLoopAt).toISOString(),
    lastLoopMs: s.lastLoopMs,
    etcdErrors: s.etcdErrors,
    failovers: s.failovers,
    lastFailoverMs: s.lastFailoverMs,
  };
}
