import { DDL_BLOCK_TRIGGER, UPGRADE_SCHEMA } from './upgrade-names.js';
import type { SqlSession } from './sql-client.js';

/*
 * The statements of an online upgrade's cutover, on one server: refusing DDL, fencing writes,
 * reading where logical slots stand, copying sequences. Each takes a session the caller opened.
 */

/**
 * Commands the DDL block lets through: logical replication's own (the upgrade publishes and
 * subscribes under it) and rights, which change no table a subscriber copies.
 */
const ALLOWED_TAGS = [
  'CREATE PUBLICATION',
  'ALTER PUBLICATION',
  'DROP PUBLICATION',
  'CREATE SUBSCRIPTION',
  'ALTER SUBSCRIPTION',
  'DROP SUBSCRIPTION',
  'GRANT',
  'REVOKE',
];

/**
 * Refuses DDL in this database until `unblockDdl`: logical replication copies rows, not schema, so
 * a table changed on the old cluster during an upgrade would stop the subscription. The event
 * trigger is dropped first: CREATE SCHEMA would otherwise meet an earlier run's trigger.
 */
export async function blockDdl(s: SqlSession): Promise<void> {
  await s.query(`DROP EVENT TRIGGER IF EXISTS ${DDL_BLOCK_TRIGGER}`);
  await s.query(`CREATE SCHEMA IF NOT EXISTS ${UPGRADE_SCHEMA}`);
  await s.query(`
    CREATE OR REPLACE FUNCTION ${UPGRADE_SCHEMA}.block_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF tg_tag IN (${ALLOWED_TAGS.map((t) => `'${t}'`).join(', ')}) THEN RETURN; END IF;
      RAISE EXCEPTION 'pgrepl upgrade is under way: % is refused until it is finished or rolled back', tg_tag
        USING HINT = 'pgrepl upgrade --finish or pgrepl upgrade --rollback lifts this';
    END $$`);
  await s.query(
    `CREATE EVENT TRIGGER ${DDL_BLOCK_TRIGGER} ON ddl_command_start EXECUTE FUNCTION ${UPGRADE_SCHEMA}.block_ddl()`,
  );
}

export async function unblockDdl(s: SqlSession): Promise<void> {
  await s.query(`DROP EVENT TRIGGER IF EXISTS ${DDL_BLOCK_TRIGGER}`);
  await s.query(`DROP SCHEMA IF EXISTS ${UPGRADE_SCHEMA} CASCADE`);
}

/** Makes every later session (and each existing one at its next statement) refuse writes by default. */
export async function refuseWrites(s: SqlSession): Promise<string> {
  const [row] = await s.query<{ at: string }>('SELECT clock_timestamp()::text AS at');
  await s.query('ALTER SYSTEM SET default_transaction_read_only = on');
  await s.query('SELECT pg_reload_conf()');
  return row?.at ?? '';
}

/**
 * Whether the postmaster has read the configuration again since `since` (a server timestamp):
 * asked on a fresh session, which inherits the postmaster's load time. Sessions it starts from
 * then on have the new setting. Returns the server's time now, or null while it has not.
 */
export async function reloadedSince(s: SqlSession, since: string): Promise<string | null> {
  const [row] = await s.query<{ done: boolean; at: string }>(
    'SELECT pg_conf_load_time() >= $1::timestamptz AS done, clock_timestamp()::text AS at',
    [since],
  );
  return row?.done === true ? row.at : null;
}

/** Lets sessions write again (the setting back from the fence; the spec's own setting, if any, applies). */
export async function allowWrites(s: SqlSession, o: { explicitly: boolean }): Promise<void> {
  // Explicitly: the new cluster's spec refuses writes until its cutover, and this overrides it.
  await s.query(
    o.explicitly
      ? 'ALTER SYSTEM SET default_transaction_read_only = off'
      : 'ALTER SYSTEM RESET default_transaction_read_only',
  );
  await s.query('SELECT pg_reload_conf()');
}

/**
 * Ends every client session but `own` (those that started before `before`, a server timestamp,
 * when given): any of them may hold a read-write transaction begun before the fence. All are
 * signalled at once, then waited for together (up to 2 s): one by one, each exit's wait adds up.
 * Returns how many were ended.
 */
export async function endSessions(s: SqlSession, own: readonly number[], before?: string): Promise<number> {
  const ended = await s.query<{ pid: number }>(
    // Materialized: the terminations run on the chosen sessions only, whatever order the
    // planner would give the conditions of one WHERE.
    `WITH chosen AS MATERIALIZED (
       SELECT pid FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> ALL($1::int[])
          AND ($2::timestamptz IS NULL OR backend_start < $2::timestamptz))
     SELECT pid FROM chosen WHERE pg_terminate_backend(pid)`,
    [own, before ?? null],
  );
  const pids = ended.map((r) => r.pid);
  for (let waited = 0; pids.length > 0 && waited < 2000; waited += 2) {
    const [left] = await s.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])',
      [pids],
    );
    if (left?.n === 0) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  return pids.length;
}

/**
 * The fence LSN: where WAL is inserted now, so every commit made so far ends at or before it; then
 * flushed up to it. WAL past the last flush (a hint bit's full page image, an abort) waits in the
 * buffers otherwise, and a walsender sends nothing beyond the flush: the drain would wait for the
 * WAL writer's next page. A transaction of this session's own commits, and its commit flushes.
 */
export async function fenceLsn(s: SqlSession): Promise<string> {
  const [row] = await s.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  await s.query('SELECT txid_current()');
  return row?.lsn ?? '0/0';
}

/** The slots of `names` whose subscriber has not yet confirmed flushing `lsn` (missing ones too). */
export async function slotsBehind(s: SqlSession, names: readonly string[], lsn: string): Promise<string[]> {
  const rows = await s.query<{ name: string }>(
    `SELECT n AS name FROM unnest($1::text[]) n
      WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots r
                         WHERE r.slot_name = n AND r.confirmed_flush_lsn >= $2::pg_lsn)`,
    [names, lsn],
  );
  return rows.map((r) => r.name);
}

/** A sequence's state, exactly: setval(name, value, called) gives the same next value. */
export interface SequenceValue {
  readonly name: string;
  readonly value: string;
  readonly called: boolean;
}

/** Every sequence of this database (pgrepl's own schema aside), with its last value and is_called. */
export async function readSequences(s: SqlSession): Promise<SequenceValue[]> {
  const names = await s.query<{ name: string }>(
    `SELECT format('%I.%I', schemaname, sequencename) AS name FROM pg_sequences
      WHERE schemaname <> $1 ORDER BY 1`,
    [UPGRADE_SCHEMA],
  );
  if (names.length === 0) return [];
  // One statement for all: each sequence is a relation of its own to read.
  return s.query<SequenceValue>(
    names
      .map(
        (n, i) =>
          `SELECT $${i + 1}::text AS name, last_value::text AS value, is_called AS called FROM ${n.name}`,
      )
      .join(' UNION ALL '),
    names.map((n) => n.name),
  );
}

/** Sets each sequence as read from the other cluster. */
export async function writeSequences(s: SqlSession, values: readonly SequenceValue[]): Promise<void> {
  if (values.length === 0) return;
  await s.query(
    `SELECT setval(n::regclass, v::bigint, c) FROM unnest($1::text[], $2::text[], $3::bool[]) AS t(n, v, c)`,
    [values.map((v) => v.name), values.map((v) => v.value), values.map((v) => v.called)],
  );
}

/**
 * A logical slot for the way back, made afresh in this session's database: made before the
 * cutover, its wait for running transactions stays out of the write gap.
 */
export async function makeWayBackSlot(s: SqlSession, name: string): Promise<void> {
  await dropSlotIfIdle(s, name);
  // It waits for every transaction holding a transaction id to end: not for ever.
  await s.query(`SET statement_timeout = '${WAY_BACK_SLOT_TIMEOUT_S}s'`);
  await s.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [name]);
  await s.query('RESET statement_timeout');
}

/** How long making the way back's slot waits for the new cluster's open transactions. */
export const WAY_BACK_SLOT_TIMEOUT_S = 30;

/**
 * Moves the way back's slot past everything this cluster has flushed: the rows the forward
 * subscription applied must not go back to where they came from. Done once the forward
 * subscription has applied its last row and before a client writes here.
 */
export async function skipToNow(s: SqlSession, name: string): Promise<void> {
  await s.query('SELECT pg_replication_slot_advance($1, pg_current_wal_flush_lsn())', [name]);
}

/** Drops slot `name` unless a walsender uses it; true while one does (the slot is then still there). */
export async function dropSlotIfIdle(s: SqlSession, name: string): Promise<boolean> {
  const [row] = await s.query<{ active: boolean }>(
    'SELECT active FROM pg_replication_slots WHERE slot_name = $1',
    [name],
  );
  if (row?.active === false) await s.query('SELECT pg_drop_replication_slot($1)', [name]);
  return row?.active === true;
}
