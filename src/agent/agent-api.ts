import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { AgentState } from './agent-loop.js';
import { agentMetrics } from './agent-metrics.js';
import { answerCheck, CHECK_PATHS } from './health-checks.js';

export interface AgentApiOptions {
  readonly host: string;
  readonly port: number;
  readonly ttlMs: number;
  readonly state: () => AgentState;
}

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
  app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));
  await app.listen({ host: o.host, port: o.port });
  return app;
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
