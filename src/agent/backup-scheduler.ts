import { Cron } from 'croner';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { dueBackup } from '../cluster/decide/decide-backup-schedule.js';
import type { DueBackup, NextRun } from '../cluster/decide/decide-backup-schedule.js';
import type { NodeSpec } from '../cluster-spec/cluster-spec.js';
import type { HaStore } from '../dcs/ha-store.js';
import type { BackupScheduleRecord, ScheduledBackup } from '../dcs/ha-values.js';
import { leadsAsPrimary } from './agent-state.js';
import type { AgentState } from './agent-state.js';

export interface BackupSchedulerDeps {
  /** The agent's context and node as they are now (the spec may have been re-read). */
  readonly context: () => { readonly ctx: ClusterContext; readonly node: NodeSpec };
  readonly store: HaStore;
  /** The agent's lease now, which its leader key lives on; null without one. */
  readonly leaseId: () => string | null;
}

const nextRun: NextRun = (pattern, from) =>
  new Cron(pattern, { paused: true }).nextRun(new Date(from))?.getTime() ?? null;

/**
 * The backup schedule (`backup.schedule`), kept by whichever agent leads: after each of its loops it
 * looks whether a backup is due, claims the cluster's one running backup in etcd on its lease, runs
 * it beside the loop (never in it: a backup takes minutes, the lease seconds), and records how it
 * ended there, so that the next leader goes on from it.
 */
export function backupScheduler(d: BackupSchedulerDeps) {
  let busy = false;
  /** When this agent began to lead with a schedule (wall ms); null while it does not. */
  let since: number | null = null;
  /** The record as this leader read it, then wrote it: it is the only writer while it leads. */
  let known: BackupScheduleRecord | null = null;

  const run = async (ctx: ClusterContext, node: NodeSpec, due: DueBackup, record: BackupScheduleRecord) => {
    const lease = d.leaseId();
    const startedAt = ctx.clock.wallNow();
    if (
      lease === null ||
      !(await d.store.claimBackup(lease, { node: node.name, type: due.type, at: startedAt }))
    )
      return;
    ctx.events.emit({
      event: 'action',
      node: node.name,
      message: `scheduled ${due.type} backup: ${due.reason}`,
    });
    // Loaded when first due: an agent without a schedule never loads the backup operations.
    const { runBackup } = await import('../cluster/operations/run-backup.js');
    let result: ScheduledBackup;
    try {
      const r = await runBackup(ctx, { type: due.type });
      result = { ...base(), ok: true, label: r.backup.label, error: null };
      ctx.events.emit({
        event: 'action',
        node: node.name,
        message: `scheduled ${due.type} backup ${r.backup.label} done in ${(r.durationMs / 1000).toFixed(1)} s (${r.why})`,
      });
    } catch (err) {
      result = { ...base(), ok: false, label: null, error: (err as Error).message };
      ctx.events.emit({
        event: 'agent-error',
        node: node.name,
        during: `scheduled ${due.type} backup`,
        error: result.error ?? '',
      });
    }
    function base() {
      return { node: node.name, type: due.type, startedAt, endedAt: ctx.clock.wallNow() };
    }
    // A failed one counts as run too: the next try is at the pattern's next time, not every loop.
    const lastEnded = { ...record.lastEnded };
    for (const t of due.covers) lastEnded[t] = result.endedAt;
    known = { lastEnded, last: result, lastOk: result.ok ? result : record.lastOk };
    await d.store.finishBackup(known);
  };

  return {
    onLoop(state: AgentState): void {
      const { ctx, node } = d.context();
      const schedule = ctx.spec.backup?.schedule ?? {};
      if (!leadsAsPrimary(state) || Object.keys(schedule).length === 0) {
        since = null;
        known = null;
        return;
      }
      since ??= ctx.clock.wallNow();
      if (busy) return;
      busy = true;
      const begun = since;
      void (async () => {
        known ??= await d.store.readBackupSchedule();
        const due = dueBackup(schedule, known.lastEnded, { now: ctx.clock.wallNow(), since: begun, nextRun });
        if (due) await run(ctx, node, due, known);
      })()
        .catch((err: unknown) =>
          ctx.events.emit({
            event: 'agent-error',
            node: node.name,
            during: 'the backup schedule',
            error: (err as Error).message,
          }),
        )
        .finally(() => (busy = false));
    },
    /** The last scheduled backup that succeeded, as this agent knows it (it leads, or led). */
    lastOk: (): ScheduledBackup | null => known?.lastOk ?? null,
  };
}

export type BackupScheduler = ReturnType<typeof backupScheduler>;
