import { removeLeftoverInitdbSecrets } from '../../postgres/instance-control.js';
import { childRecordsDir, reapOrphans } from '../context/child-records.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { assertNoInterruptedOperation } from './journal.js';

/**
 * Runs a change of the cluster under its lock, after clearing what a killed pgrepl left behind,
 * and (unless `allowInterrupted`) only when no earlier operation was left half-done.
 */
export function exclusively<T>(
  ctx: ClusterContext,
  command: string,
  fn: () => Promise<T>,
  o: { allowInterrupted?: boolean } = {},
): Promise<T> {
  return ctx.store.withLock(command, async () => {
    // A pgrepl killed by SIGKILL could not stop its children: they must be gone before anything
    // is retried (a clone would otherwise be restarted into the path an orphan still writes).
    for (const left of await reapOrphans(childRecordsDir(ctx.spec.stateDir)))
      ctx.events.emit({ event: 'note', message: `stopped ${left}, which was still running` });
    removeLeftoverInitdbSecrets(ctx.paths.secretsDir);
    if (!o.allowInterrupted) await assertNoInterruptedOperation(ctx.store);
    return fn();
  });
}
