import type { BackupEntry } from '../../backup/backup-info.js';
import { parseLsn } from '../../postgres/lsn.js';

/** Where a restore stops: a moment, a WAL position, or the end of the archive. */
export type RestoreTarget =
  | { readonly kind: 'time'; readonly text: string; readonly ms: number }
  | { readonly kind: 'lsn'; readonly lsn: string }
  | { readonly kind: 'latest' };

export type RestoreDecision =
  | {
      readonly ok: true;
      /** The backup pgBackRest starts from: the newest that ends before the target. */
      readonly backup: BackupEntry;
      /**
       * pgBackRest's restore options: the target, the backup set (named, so that what `restore` said it
       * starts from is what pgBackRest uses), and promotion of the restored server once it gets there.
       */
      readonly options: readonly string[];
    }
  | { readonly ok: false; readonly code: 'E_NO_BACKUP' | 'E_RESTORE_TARGET'; readonly reason: string };

const TIME = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)\s*(Z|[+-]\d{2}(?::?\d{2})?)$/i;

/**
 * Reads a --to time. The zone is required: PostgreSQL would read a time without one in the
 * restored server's TimeZone, pgBackRest in its own, and a restore an hour off loses the table it
 * was meant to save. Returns the text both read the same way (`YYYY-MM-DD HH:MM:SS[.ffffff]+HH:MM`),
 * or null when it is not such a time.
 */
export function parseRestoreTime(text: string): { text: string; ms: number } | null {
  const m = TIME.exec(text.trim());
  if (!m) return null;
  const [, date, clock, zone] = m as unknown as [string, string, string, string];
  const offset =
    zone.toUpperCase() === 'Z'
      ? '+00:00'
      : zone.length === 3
        ? `${zone}:00`
        : zone.replace(/^([+-]\d{2}):?(\d{2})$/, '$1:$2');
  const ms = Date.parse(
    `${date}T${clock.length === 5 ? `${clock}:00` : clock.replace(/(\.\d{3})\d+$/, '$1')}${offset}`,
  );
  if (Number.isNaN(ms)) return null;
  return { text: `${date} ${clock}${offset}`, ms };
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

/**
 * Which backup a restore to `target` starts from, as pgBackRest picks it: for a time, the newest
 * backup that stopped before it; for an LSN, the newest whose stop LSN is not after it; for the
 * end of the archive, the newest. A target before every backup, or in the future, is refused.
 */
export function decideRestore(
  target: RestoreTarget,
  backups: readonly BackupEntry[],
  nowMs: number,
): RestoreDecision {
  const usable = backups.filter((b) => !b.error);
  if (usable.length === 0)
    return {
      ok: false,
      code: 'E_NO_BACKUP',
      reason: 'the repository holds no backup of this cluster yet: `pgrepl backup` takes one',
    };
  const first = usable[0] as BackupEntry;
  if (target.kind === 'latest')
    return { ok: true, backup: usable.at(-1) as BackupEntry, options: ['--type=default'] };
  if (target.kind === 'time') {
    if (target.ms > nowMs)
      return { ok: false, code: 'E_RESTORE_TARGET', reason: `${target.text} is in the future` };
    const before = usable.filter((b) => b.stoppedAt * 1000 < target.ms);
    const chosen = before.at(-1);
    if (!chosen)
      return {
        ok: false,
        code: 'E_RESTORE_TARGET',
        reason: `${target.text} is before the end of the first backup (${first.label}, ${iso(first.stoppedAt)}): the earliest time a restore can reach is just after that`,
      };
    return {
      ok: true,
      backup: chosen,
      options: ['--type=time', `--target=${target.text}`, '--target-action=promote', `--set=${chosen.label}`],
    };
  }
  const lsn = parseLsn(target.lsn);
  const chosen = usable.filter((b) => b.lsnStop !== '' && parseLsn(b.lsnStop) <= lsn).at(-1);
  if (!chosen)
    return {
      ok: false,
      code: 'E_RESTORE_TARGET',
      reason: `${target.lsn} is before the end of the first backup (${first.label}, which ends at ${first.lsnStop})`,
    };
  return {
    ok: true,
    backup: chosen,
    options: ['--type=lsn', `--target=${target.lsn}`, '--target-action=promote', `--set=${chosen.label}`],
  };
}
