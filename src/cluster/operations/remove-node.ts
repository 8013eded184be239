import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { PgreplError } from '../../errors.js';
import { removeNodeFromSpec } from '../../cluster-spec/edit-spec.js';
import { EMBEDDED_SOURCE, loadSpec } from '../../cluster-spec/load-spec.js';
import { controlOf } from '../actions/control-of.js';
import { nodeOf, sqlOn } from '../context/node-sql.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { topologyGuard } from '../decide/topology-guard.js';
import { observeCluster } from '../observe/observe-cluster.js';
import { roleOf } from '../observe/observation.js';
import { applyUp, planCluster } from './run-up.js';
import type { UpResult } from './run-up.js';

export interface RemoveResult {
  readonly node: string;
  readonly stopped: boolean;
  readonly slotDropped: boolean;
  /** The data directory, when it was kept. */
  readonly keptDataDir: string | null;
  /**
   * What the other nodes needed once it was gone (pg_hba, synchronous_standby_names); null when
   * their agents render them (they follow the spec file).
   */
  readonly others: UpResult | null;
}

/**
 * `remove NODE --yes`: takes a replica out of the cluster: stops it, drops its slot on the primary,
 * removes it from the spec (keeping the file's layout), and renders the others without it. Its data
 * directory stays unless `deleteData` (and only one pgrepl created goes). Run exclusively. With
 * `renderOthers: false` (agents run the cluster) the others are left to their agents.
 */
export async function removeNode(
  ctx: ClusterContext,
  name: string,
  o: { deleteData: boolean; renderOthers?: boolean },
): Promise<{ result: RemoveResult; ctx: ClusterContext }> {
  if (ctx.spec.source === EMBEDDED_SOURCE)
    throw new PgreplError('E_SPEC_NOT_FOUND', 'remove edits pgrepl.yaml; write it first with `pgrepl init`');
  const node = nodeOf(ctx, name);
  const obs = await observeCluster(ctx);
  const guard = topologyGuard(obs, { actsOn: 'all' });
  if (guard) throw new PgreplError(guard.code, `${guard.reason}; nothing was changed`);
  const me = obs.nodes.find((n) => n.node.name === name);
  if (me && roleOf(me) === 'primary')
    throw new PgreplError(
      'E_IS_PRIMARY',
      `${name} is the primary; switch over first (\`pgrepl switchover\`), then remove it; nothing was changed`,
    );
  if (ctx.spec.nodes.length === 1)
    throw new PgreplError(
      'E_USAGE',
      `${name} is the only node; \`pgrepl destroy --yes\` removes the cluster`,
    );
  const control = controlOf(ctx, node);
  const say = (message: string) => ctx.events.emit({ event: 'action', node: name, message });
  const running = control.state().pid !== null;
  if (running) {
    say(`stopping ${name}`);
    await control.stop('fast');
  }
  const primary = obs.nodes.find((n) => roleOf(n) === 'primary')?.node;
  let slotDropped = false;
  if (primary) {
    // Stopped, it no longer uses its slot, which would otherwise hold the primary's WAL for ever.
    slotDropped = await sqlOn(ctx, primary, async (s) => {
      const slots = await s.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [name]);
      if (slots.length > 0) await s.query('SELECT pg_drop_replication_slot($1)', [name]);
      return slots.length > 0;
    });
    if (slotDropped) say(`dropped slot ${name} on ${primary.name}`);
  }
  removeNodeFromSpec(ctx.spec.source, name);
  await ctx.store.setFenced(name, false);
  const dir = me?.dataDir.local ? me.dataDir : null;
  let keptDataDir: string | null = node.dataDir;
  if (o.deleteData) {
    if (!dir?.createdByPgrepl)
      throw new PgreplError(
        'E_DATA_DIR_FOREIGN',
        `${name} is removed, but its data directory ${node.dataDir} was not created by pgrepl and is kept`,
      );
    rmSync(node.dataDir, { recursive: true, force: true });
    keptDataDir = null;
  }
  const spec = await loadSpec({ cwd: dirname(ctx.spec.source), env: ctx.processEnv, file: ctx.spec.source });
  const after = { ...ctx, spec };
  const others =
    o.renderOthers === false ? null : await applyUp(after, await planCluster(after, { create: false }));
  return { result: { node: name, stopped: running, slotDropped, keptDataDir, others }, ctx: after };
}
