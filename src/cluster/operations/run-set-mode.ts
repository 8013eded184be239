import { dirname } from 'node:path';
import { PgreplError } from '../../errors.js';
import { writeReplicationMode } from '../../cluster-spec/edit-spec.js';
import { EMBEDDED_SOURCE, loadSpec } from '../../cluster-spec/load-spec.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { decideSetMode } from '../decide/decide-set-mode.js';
import type { SetModeRequest } from '../decide/decide-set-mode.js';
import { observeCluster } from '../observe/observe-cluster.js';
import { roleOf } from '../observe/observation.js';
import { recordHistory } from './record-history.js';

/**
 * Records a new replication mode in the spec file, once decideSetMode allows it, and returns the
 * context of the edited spec: `up` then renders synchronous_standby_names on every node. Run
 * exclusively, together with that `up`, so that no other command sees the spec and the servers
 * disagree.
 */
export async function setMode(ctx: ClusterContext, req: SetModeRequest): Promise<ClusterContext> {
  if (ctx.spec.source === EMBEDDED_SOURCE) {
    throw new PgreplError(
      'E_SPEC_NOT_FOUND',
      'set-mode records the mode in pgrepl.yaml; write it first with `pgrepl init` (same cluster as the default)',
    );
  }
  const began = ctx.clock.now();
  const obs = await observeCluster(ctx);
  const decision = decideSetMode(obs, req);
  if (decision.kind === 'refuse')
    throw new PgreplError(decision.code, `${decision.reason}; nothing was changed`);
  ctx.events.emit({ event: 'decision', op: 'set-mode', reason: `${decision.mode}: ${decision.reason}` });
  writeReplicationMode(ctx.spec.source, decision.mode, decision.count);
  const spec = await loadSpec({ cwd: dirname(ctx.spec.source), env: ctx.processEnv, file: ctx.spec.source });
  const primary = obs.nodes.find((n) => roleOf(n) === 'primary')?.node.name ?? null;
  await recordHistory(ctx, {
    op: 'set-mode',
    node: primary,
    from: null,
    primary,
    lsn: null,
    durationMs: ctx.clock.now() - began,
    reason: `${decision.mode}${decision.mode === 'async' ? '' : ` ${decision.count}`}: ${decision.reason}`,
  });
  return { ...ctx, spec };
}
