import { z } from 'zod';

/** One backup in the repository, as `pgrepl backups` shows it. */
export interface BackupEntry {
  readonly label: string;
  readonly type: 'full' | 'diff' | 'incr';
  /** Unix seconds. */
  readonly startedAt: number;
  readonly stoppedAt: number;
  /** The database's size, and what this backup added to the repository (compressed). */
  readonly sizeBytes: number;
  readonly repoDeltaBytes: number;
  /** The WAL a restore of it needs at least: its first and last segment, and its LSNs. */
  readonly walStart: string;
  readonly walStop: string;
  readonly lsnStart: string;
  readonly lsnStop: string;
  /** The backup this one is relative to (diff, incr); null for a full one. */
  readonly prior: string | null;
  /** pgBackRest found a page checksum error while copying. */
  readonly error: boolean;
}

/** The stanza of a cluster in the repository: its database, backups and archived WAL. */
export interface StanzaInfo {
  /** ok; or missing: the repository has no stanza of that name (`up` creates it). */
  readonly status: 'ok' | 'missing' | 'error';
  /** pgBackRest's words for its status. */
  readonly message: string;
  /** The database system identifiers the stanza was made for, newest last (a decimal string: 64 bits). */
  readonly systemIds: readonly string[];
  readonly backups: readonly BackupEntry[];
  /** The oldest and newest archived segment, per PostgreSQL version and database id ("15-1"). */
  readonly archive: readonly {
    readonly id: string;
    readonly min: string | null;
    readonly max: string | null;
  }[];
  /** A backup runs now. */
  readonly backupRunning: boolean;
}

const infoSchema = z.array(
  z.object({
    name: z.string(),
    status: z.object({
      code: z.number(),
      message: z.string(),
      lock: z.object({ backup: z.object({ held: z.boolean() }) }).optional(),
    }),
    repo: z.array(z.object({ status: z.object({ code: z.number(), message: z.string() }) })).optional(),
    db: z.array(z.object({ 'system-id': z.string(), version: z.string() })),
    archive: z.array(z.object({ id: z.string(), min: z.string().nullable(), max: z.string().nullable() })),
    backup: z.array(
      z.object({
        label: z.string(),
        type: z.enum(['full', 'diff', 'incr']),
        error: z.boolean().optional(),
        prior: z.string().nullable(),
        timestamp: z.object({ start: z.number(), stop: z.number() }),
        info: z.object({ size: z.number(), repository: z.object({ delta: z.number() }) }),
        archive: z.object({ start: z.string().nullable(), stop: z.string().nullable() }),
        lsn: z.object({ start: z.string(), stop: z.string() }).optional(),
      }),
    ),
  }),
);

/**
 * Parses `pgbackrest info --output=json` for one stanza. Its system-id is a 64-bit integer, which
 * JSON.parse would round: it is read as a string.
 */
export function parseStanzaInfo(json: string, stanza: string): StanzaInfo {
  const quoted = json.replace(/"system-id":\s*(\d+)/g, '"system-id":"$1"');
  const entry = infoSchema.parse(JSON.parse(quoted)).find((s) => s.name === stanza);
  if (!entry) throw new Error(`pgbackrest info has no stanza ${stanza}`);
  // Status 1 is pgBackRest's "missing stanza path"; 2 "no valid backups" still means the stanza is there.
  // 0 ok, 2 no valid backup yet, 6 a backup or expire runs: the stanza is there. 1 and 3: no stanza (path, or its files).
  const code = entry.status.code;
  const status = [0, 2, 6].includes(code) ? 'ok' : [1, 3].includes(code) ? 'missing' : 'error';
  return {
    status,
    // The repository's own status says what "other" is (a permission, a path).
    message: entry.repo?.find((r) => r.status.code !== 0)?.status.message ?? entry.status.message,
    systemIds: entry.db.map((d) => d['system-id']),
    backups: entry.backup.map((b) => ({
      label: b.label,
      type: b.type,
      startedAt: b.timestamp.start,
      stoppedAt: b.timestamp.stop,
      sizeBytes: b.info.size,
      repoDeltaBytes: b.info.repository.delta,
      walStart: b.archive.start ?? '',
      walStop: b.archive.stop ?? '',
      lsnStart: b.lsn?.start ?? '',
      lsnStop: b.lsn?.stop ?? '',
      prior: b.prior,
      error: b.error ?? false,
    })),
    archive: entry.archive.map((a) => ({ id: a.id, min: a.min, max: a.max })),
    backupRunning: entry.status.lock?.backup.held ?? false,
  };
}
