import { formatLsn, parseLsn } from './lsn.js';
import type { SqlSession } from './sql-client.js';
import { monotonicNow } from '../monotonic-now.js';

/** How often an unanswered promotion is asked again (see promoteStandby). */
const ASK_AGAIN_MS = 20;

/**
 * Promotes a standby and waits until it accepts writes. pg_promote's own wait polls every 100 ms;
 * polling pg_is_in_recovery() every 5 ms here takes up to ~95 ms off every failover. The request is
 * sent again every 20 ms until it is carried out: PostgreSQL can take a promote request that comes
 * while its startup process moves from streaming to reading pg_wal, and then sleep
 * wal_retrieve_retry_interval (1 s) before acting on it (seen in one switchover in three to ten here).
 * Asking again wakes it. A request left over once the promotion is done is harmless: the
 * postmaster removes promote signal files when it starts.
 */
export async function promoteStandby(s: SqlSession, timeoutMs = 60_000): Promise<boolean> {
  await s.query('SELECT pg_promote(false)');
  const deadline = monotonicNow() + timeoutMs;
  let askedAt = monotonicNow();
  while (monotonicNow() < deadline) {
    const [row] = await s.query<{ ro: boolean }>('SELECT pg_is_in_recovery() AS ro');
    if (row?.ro === false) return true;
    if (monotonicNow() - askedAt >= ASK_AGAIN_MS) {
      // "recovery is not in progress": it ended since the check above, as asked.
      await s.query('SELECT pg_promote(false)').catch(() => undefined);
      askedAt = monotonicNow();
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return false;
}

/** A standby's received and replayed positions. */
export async function readReplayProgress(
  s: SqlSession,
): Promise<{ receive: string | null; replay: string | null }> {
  const [row] = await s.query<{ receive: string | null; replay: string | null }>(
    'SELECT pg_last_wal_receive_lsn()::text AS receive, pg_last_wal_replay_lsn()::text AS replay',
  );
  return { receive: row?.receive ?? null, replay: row?.replay ?? null };
}

/** One line of a timeline history file: `timeline` ended at `endedAt`, where its child began. */
export interface TimelineSwitch {
  readonly timeline: number;
  readonly endedAt: string;
}

/** A primary's current timeline and the switches that led to it. */
export interface TimelineHistory {
  readonly current: number;
  /** Empty on timeline 1. */
  readonly history: TimelineSwitch[];
}

/** A primary's current timeline and the history that led to it (empty on timeline 1). */
export async function readTimelineHistory(s: SqlSession): Promise<TimelineHistory> {
  const [row] = await s.query<{ tli: number }>(
    "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli",
  );
  const current = Number(row?.tli);
  if (!(current > 1)) return { current, history: [] };
  const name = `pg_wal/${current.toString(16).toUpperCase().padStart(8, '0')}.history`;
  const [file] = await s.query<{ text: string }>('SELECT pg_read_file($1) AS text', [name]);
  const history = (file?.text ?? '')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([tli, at]) => tli !== undefined && /^\d+$/.test(tli) && at !== undefined && at.includes('/'))
    .map(([tli, at]) => ({ timeline: Number(tli), endedAt: formatLsn(parseLsn(at as string)) }));
  return { current, history };
}
