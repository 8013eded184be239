import type pg from 'pg';
import { tokenPosition } from './read-token.js';

/** What one look at a node says. */
export interface Probe {
  readonly recovery: boolean;
  /**
   * A primary that refuses writes by default (default_transaction_read_only: an upgrade's fence on
   * the cluster being left, or on the new one until its cutover): it takes no writes.
   */
  readonly readOnly: boolean;
  /** A replica's replayed position, a primary's current one. */
  readonly lsn: bigint;
  /** A primary's timeline (from its current WAL file's name: right from the promotion on); null on a replica. */
  readonly timeline: number | null;
}

/** A node's role, position and (a primary's) timeline, from one statement. */
const PROBE_SQL = `
  SELECT pg_is_in_recovery() AS recovery,
         current_setting('default_transaction_read_only')::bool AS read_only,
         CASE WHEN pg_is_in_recovery() THEN COALESCE(pg_last_wal_replay_lsn(), '0/0') ELSE pg_current_wal_lsn() END::text AS lsn,
         CASE WHEN pg_is_in_recovery() THEN NULL
              ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline`;

/** A node's role and position, read through `q` (a pool, or the very connection a read will use). */
export async function readPosition(q: pg.Pool | pg.PoolClient): Promise<Probe> {
  const { rows } = await q.query<{
    recovery: boolean;
    read_only: boolean;
    lsn: string;
    timeline: number | null;
  }>(PROBE_SQL);
  const row = rows[0];
  if (!row) throw new Error('the position query returned no row');
  return {
    recovery: row.recovery,
    readOnly: row.read_only,
    lsn: tokenPosition(row.lsn),
    timeline: row.timeline,
  };
}

/**
 * A node's role and position, or null when it does not answer within `timeoutMs` (a node cut off
 * holds its connection attempt far longer: the answer is not waited for).
 */
export async function probeNode(pool: pg.Pool, timeoutMs: number): Promise<Probe | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((r) => {
    timer = setTimeout(() => r(null), timeoutMs);
  });
  try {
    return await Promise.race([readPosition(pool).catch(() => null), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
