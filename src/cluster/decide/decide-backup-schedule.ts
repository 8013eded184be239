import type { BackupSchedule } from '../../cluster-spec/cluster-spec.js';

export type BackupType = 'full' | 'diff' | 'incr';

/** When a cron pattern next fires after `from` (ms), or null when it never does again. */
export type NextRun = (pattern: string, from: number) => number | null;

/** The larger types first: a full backup due with an incremental one makes the incremental pointless. */
const ORDER: readonly BackupType[] = ['full', 'diff', 'incr'];

export interface DueBackup {
  readonly type: BackupType;
  /** Every type whose time came: all of them count as done once `type` ends. */
  readonly covers: readonly BackupType[];
  readonly reason: string;
}

/**
 * Which scheduled backup is due now, if any. A type is due once its pattern fired after it last
 * ended (or, never run, after `since`: when this leader began to keep the schedule, so a new leader
 * does not run every type at once). Pure; the cron arithmetic is passed in.
 */
export function dueBackup(
  schedule: BackupSchedule,
  lastEnded: Readonly<Partial<Record<BackupType, number>>>,
  o: { readonly now: number; readonly since: number; readonly nextRun: NextRun },
): DueBackup | null {
  const due = ORDER.filter((type) => {
    const pattern = schedule[type];
    if (pattern === undefined) return false;
    const next = o.nextRun(pattern, lastEnded[type] ?? o.since);
    return next !== null && next <= o.now;
  });
  const type = due[0];
  if (type === undefined) return null;
  const last = lastEnded[type];
  return {
    type,
    covers: due,
    reason: `${type} backups run at "${schedule[type]}", and the last ${last === undefined ? 'one this leader knows of' : `ended ${new Date(last).toISOString()}`}${last === undefined ? ' is none' : ''}`,
  };
}
