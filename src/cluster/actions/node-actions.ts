import { PgreplError } from '../../errors.js';
import { walRemovedLine } from '../../postgres/instance-control.js';
import { readSenders } from '../../postgres/instance-queries.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { renderNodeConfig } from '../decide/render-node-config.js';
import type { NodeConfig, RenderFacts } from '../decide/render-node-config.js';
import { pollOn } from '../context/node-sql.js';
import { controlOf } from './control-of.js';

/** What rendering needs from the context, besides the spec. */
export function renderFacts(ctx: ClusterContext): RenderFacts {
  return { pgMajor: ctx.env.bins.major, hosts: Object.fromEntries(ctx.hosts) };
}

/** The files `node` should have when it streams from `upstream` (none: it is the primary). */
export function configFor(ctx: ClusterContext, node: NodeSpec, upstream: NodeSpec | undefined): NodeConfig {
  return renderNodeConfig(ctx.spec, renderFacts(ctx), node, upstream);
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
