import { PgreplError } from '../../errors.js';
import { withSql } from '../../postgres/sql-client.js';
import type { SqlSession } from '../../postgres/sql-client.js';
import { findNode } from '../../cluster-spec/cluster-spec.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import { requireSuperuserPassword, superuserTarget } from './cluster-context.js';
import type { ClusterContext } from './cluster-context.js';
import type { Clock } from './clock.js';

/*
 * Reaching a node of the spec: by its name, and over SQL as the superuser. Below observe/ (which
 * reads with it) and actions/ (which act with it).
 */

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

/** Runs `fn` on a connection to `node` as the superuser; `queryTimeoutMs` bounds each query. */
export function sqlOn<T>(
  ctx: ClusterContext,
  node: NodeSpec,
  fn: (s: SqlSession) => Promise<T>,
  timeoutMs?: number,
  queryTimeoutMs?: number,
): Promise<T> {
  return withSql(superuserTarget(ctx, node, requireSuperuserPassword(ctx)), fn, timeoutMs, queryTimeoutMs);
}

/** `fn` on a connection to `node`'s `database` (not postgres) as the superuser. */
export function sqlOnDatabase<T>(
  ctx: ClusterContext,
  node: NodeSpec,
  database: string,
  fn: (s: SqlSession) => Promise<T>,
): Promise<T> {
  return withSql({ ...superuserTarget(ctx, node, requireSuperuserPassword(ctx)), database }, fn);
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
