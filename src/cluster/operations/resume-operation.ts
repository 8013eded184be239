import { PgreplError } from '../../errors.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { Journal } from './journal.js';
import type { JournalEntry } from '../store/cluster-store.js';
import { runPromote } from './run-promote.js';
import type { PromoteResult } from './run-promote.js';
import { runRejoin } from './run-rejoin.js';
import type { RejoinResult } from './run-rejoin.js';
import { abandonSwitchover, runSwitchover } from './run-switchover.js';
import type { SwitchoverResult } from './run-switchover.js';

export type ResumeResult =
  | { readonly op: 'none' }
  | { readonly op: 'switchover'; readonly from: JournalEntry; readonly result: SwitchoverResult }
  | { readonly op: 'promote'; readonly from: JournalEntry; readonly result: PromoteResult }
  | { readonly op: 'rejoin'; readonly from: JournalEntry; readonly result: RejoinResult };

/**
 * Finishes the operation an interrupted run left in the journal, from the step it was in; `none`
 * when nothing was interrupted. Run exclusively (the journal is read under the lock).
 */
export async function resumeInterrupted(ctx: ClusterContext): Promise<ResumeResult> {
  const from = await ctx.store.readJournal();
  if (!from) return { op: 'none' };
  ctx.events.emit({
    event: 'decision',
    op: 'resume',
    reason: `resuming \`pgrepl ${from.resume.join(' ')}\` from step "${from.step}"`,
  });
  const journal = Journal.resume(ctx.store, from, ctx);
  switch (from.op) {
    case 'switchover':
      return { op: 'switchover', from, result: await runSwitchover(ctx, undefined, journal) };
    case 'promote': {
      const req = { target: undefined, auto: false, force: true, oldPrimaryIsDown: false };
      return { op: 'promote', from, result: await runPromote(ctx, req, journal) };
    }
    case 'rejoin': {
      // The journal says whether pg_rewind finished (start the node) or was cut off (re-clone it).
      const keepAt = from.resume.indexOf('--keep');
      const req = {
        reclone: from.resume.includes('--reclone'),
        keep: keepAt >= 0 ? from.resume[keepAt + 1] : undefined,
      };
      return {
        op: 'rejoin',
        from,
        result: await runRejoin(ctx, from.facts['node'] ?? '', req, journal),
      };
    }
  }
}

/**
 * Undoes an interrupted switchover while its target is not promoted yet; null when nothing was
 * interrupted. Every other operation can only be resumed once begun.
 */
export async function abandonInterrupted(
  ctx: ClusterContext,
): Promise<{ readonly from: JournalEntry; readonly primary: string } | null> {
  const from = await ctx.store.readJournal();
  if (!from) return null;
  if (from.op !== 'switchover') {
    throw new PgreplError(
      'E_NOT_RESUMABLE',
      `an interrupted ${from.op} cannot be undone once started; run \`pgrepl resume\``,
    );
  }
  await abandonSwitchover(ctx, Journal.resume(ctx.store, from, ctx));
  return { from, primary: from.facts['oldPrimary'] ?? '' };
}
