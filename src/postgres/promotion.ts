import { parseLsn } from './lsn.js';
import type { SqlSession } from './sql-client.js';

/** Promotes a standby and waits until it accepts writes (PostgreSQL's own wait, up to `seconds`). */
export async function promoteStandby(s: SqlSession, seconds = 60): Promise<boolean> {
  const [row] = await s.query<{ ok: boolean }>('SELECT pg_promote(true, $1) AS ok', [seconds]);
  return row?.ok === true;
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

/**
 * Where the current timeline of a primary branched off its parent: the last line of its
 * timeline history file. Null on timeline 1 (no history).
 */
export async function readTimelineSwitch(
  s: SqlSession,
): Promise<{ timeline: number; parent: number; at: string } | null> {
  const [row] = await s.query<{ tli: number }>(
    "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli",
  );
  const tli = Number(row?.tli);
  if (!(tli > 1)) return null;
  const name = `pg_wal/${tli.toString(16).toUpperCase().padStart(8, '0')}.history`;
  const [file] = await s.query<{ text: string }>('SELECT pg_read_file($1) AS text', [name]);
  const last = (file?.text ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .pop();
  const [parent, at] = (last ?? '').split(/\s+/);
  if (!parent || !at) return null;
  parseLsn(at);
  return { timeline: tli, parent: Number(parent), at };
}
