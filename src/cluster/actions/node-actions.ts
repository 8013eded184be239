import { PgreplError } from '../../errors.js';
import { walRemovedLine } from '../../postgres/instance-control.js';
import { readSenders } from '../../postgres/instance-queries.js';
import { withSql } from '../../postgres/sql-client.js';
import type { SqlSession } from '../../postgres/sql-client.js';
import { findNode } from '../../cluster-spec/cluster-spec.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import { requireSuperuserPassword } from '../context/cluster-context.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { renderNodeConfig } from '../decide/render-node-config.js';
import type { NodeConfig, RenderFacts } from '../decide/render-node-config.js';
import type { Clock } from '../context/clock.js';
import { controlOf } from './control-of.js';

/** The spec's node called `name`, or E_UNKNOWN_NODE naming the spec file and the nodes it has. */
export function nodeOf(ctx: ClusterContext, name: string): NodeSpec {
  const node = findNode(ctx.spec, name);
  if (!node) {
    throw new PgreplError(
      'E_UNKNOWN_NODE',
      `no node named "${name}" in ${ctx.spec.source}; nodes are: ${ctx.spec.nodes.map((n) => n.name).join(', ')}`,
    );
  }
  return node;
}

/** What rendering needs from the context, besides the spec. */
export function renderFacts(ctx: ClusterContext): RenderFacts {
  return { pgMajor: ctx.env.bins.major, hosts: Object.fromEntries(ctx.hosts) };
}

/** The files `node` should have when it streams from `upstream` (none: it is the primary). */
export function configFor(ctx: ClusterContext, node: NodeSpec, upstream: NodeSpec | undefined): NodeConfig {
  return renderNodeConfig(ctx.spec, renderFacts(ctx), node, upstream);
}

/** Runs `fn` on a connection to `node` as the superuser; `queryTimeoutMs` bounds each query. */
export function sqlOn<T>(
  ctx: ClusterContext,
  node: NodeSpec,
  fn: (s: SqlSession) => Promise<T>,
  timeoutMs?: number,
  queryTimeoutMs?: number,
): Promise<T> {
  return withSql(
    {
      host: node.host,
      port: node.port,
      user: ctx.spec.superuser.name,
      password: requireSuperuserPassword(ctx),
      label: node.name,
    },
    fn,
    timeoutMs,
    queryTimeoutMs,
  );
}

/**
 * Runs `check` on session `s` every `intervalMs` until it returns a value or `deadline` passes;
 * ends with the abort reason as soon as `signal` is aborted.
 */
export async function pollSession<T>(
  s: SqlSession,
  check: (s: SqlSession) => Promise<T | undefined>,
  o: { deadline: number; intervalMs: number; clock: Clock; signal: AbortSignal | undefined },
): Promise<T | undefined> {
  while (o.clock.now() < o.deadline) {
    o.signal?.throwIfAborted();
    const v = await check(s);
    if (v !== undefined) return v;
    await o.clock.sleep(o.intervalMs, o.signal);
  }
  return undefined;
}

/**
 * Runs `check` on one connection to `node` every `intervalMs` until it returns a value, and returns
 * that value; undefined when `timeoutMs` passes first. A broken connection is opened again: polls
 * that connect each time would pay a SCRAM handshake (~20 ms) per look.
 */
export async function pollOn<T>(
  ctx: ClusterContext,
  node: NodeSpec,
  check: (s: SqlSession) => Promise<T | undefined>,
  o: { timeoutMs: number; intervalMs: number },
): Promise<T | undefined> {
  const { clock, abort: signal } = ctx;
  const deadline = clock.now() + o.timeoutMs;
  while (clock.now() < deadline) {
    try {
      return await sqlOn(ctx, node, (s) =>
        pollSession(s, check, { deadline, intervalMs: o.intervalMs, clock, signal }),
      );
    } catch (err) {
      if (signal?.aborted) throw err;
      await clock.sleep(o.intervalMs, signal);
    }
  }
  return undefined;
}

/**
 * Waits until `upstream`'s pg_stat_replication shows `node` streaming; on timeout, says why with its
 * log. Given `logFrom` (the node's log length before it was started), fails at once with
 * E_WAL_REMOVED when the node's log says the upstream no longer has the WAL it needs.
 */
export async function waitStreaming(
  ctx: ClusterContext,
  node: NodeSpec,
  upstream: NodeSpec,
  timeoutMs = ctx.timeouts.streamingMs,
  logFrom?: number,
): Promise<void> {
  let last = 'not connected';
  let removed: string | null = null;
  let nextLogLook = 0;
  const streaming = await pollOn(
    ctx,
    upstream,
    async (s) => {
      const mine = (await readSenders(s)).find((r) => r.applicationName === node.name);
      last = mine ? mine.state : 'not connected';
      if (mine?.state === 'streaming') return true;
      if (logFrom !== undefined && ctx.clock.now() >= nextLogLook) {
        nextLogLook = ctx.clock.now() + 200;
        removed = walRemovedLine(controlOf(ctx, node).logSince(logFrom));
        if (removed !== null) return false;
      }
      return undefined;
    },
    { timeoutMs, intervalMs: 10 },
  );
  if (streaming === true) return;
  if (removed !== null)
    throw new PgreplError(
      'E_WAL_REMOVED',
      `${node.name} cannot stream from ${upstream.name}, which no longer holds the WAL it needs ("${removed}")`,
    );
  throw new PgreplError(
    'E_TIMEOUT',
    `${node.name} did not start streaming from ${upstream.name} within ${timeoutMs / 1000} s (last state: ${last}); ` +
      `its log says:\n${controlOf(ctx, node).logTail()}`,
  );
}
