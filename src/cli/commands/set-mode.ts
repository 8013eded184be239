import { observeCluster } from '../../cluster/observe/observe-cluster.js';
import { roleOf } from '../../cluster/observe/observation.js';
import { PgreplError } from '../../errors.js';
import type { ReplicationMode } from '../../spec/cluster-spec.js';
import { writeReplicationMode } from '../../spec/edit-spec.js';
import { EMBEDDED_SOURCE } from '../../spec/load-spec.js';
import { changing, commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';
import { runUp } from './up.js';

/** `set-mode async | sync [--count N] | quorum --count N [--force]` */
export async function runSetMode(
  g: GlobalOptions,
  mode: string,
  o: { count?: string; force?: boolean; json?: boolean },
): Promise<number> {
  if (mode !== 'async' && mode !== 'sync' && mode !== 'quorum') {
    throw new PgreplError('E_REFUSED', `mode must be async, sync or quorum, not "${mode}"`);
  }
  if (mode === 'quorum' && o.count === undefined)
    throw new PgreplError('E_REFUSED', 'quorum needs --count N (how many replicas must confirm)');
  const count = o.count === undefined ? 1 : Number(o.count);
  if (!Number.isInteger(count) || count < 1)
    throw new PgreplError('E_REFUSED', `--count must be a whole number ≥ 1, not "${o.count}"`);
  const ctx = await commandContext(g);
  if (ctx.spec.source === EMBEDDED_SOURCE) {
    throw new PgreplError(
      'E_SPEC_NOT_FOUND',
      'set-mode records the mode in pgrepl.yaml; write it first with `pgrepl init` (same cluster as the default)',
    );
  }
  await changing(ctx, 'set-mode', async () => {
    if (mode !== 'async') {
      const obs = await observeCluster(ctx);
      const primary = obs.nodes.find((n) => roleOf(n) === 'primary');
      const streaming = primary?.server?.ok
        ? primary.server.senders.filter((s) => s.state === 'streaming').length
        : 0;
      if (count > streaming && !o.force) {
        throw new PgreplError(
          'E_REFUSED',
          `${mode} --count ${count} needs ${count} streaming replica(s) and ${streaming} stream now: every commit would hang. ` +
            'Bring replicas up first, or add --force if that is what you want; nothing was changed',
        );
      }
    }
    writeReplicationMode(ctx.spec.source, mode as ReplicationMode, count);
  });
  // The spec now says the mode; `up` renders synchronous_standby_names on every node and reloads.
  return runUp(g, { json: o.json === true }, { create: false });
}
