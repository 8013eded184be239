import type { SqlSession } from './sql-client.js';

/*
 * What logical replication needs to know of a database, read over SQL: its publications and
 * subscriptions, and the facts the pre-flight check judges (tables, keys, large objects, extensions,
 * collation). Reads only.
 */

export interface PublicationState {
  readonly name: string;
  readonly allTables: boolean;
  /** schema.table, sorted; every table for an all-tables publication. */
  readonly tables: readonly string[];
}

export async function readPublications(s: SqlSession): Promise<PublicationState[]> {
  const rows = await s.query<{ name: string; all: boolean; tables: string[] }>(
    `SELECT p.pubname AS name, p.puballtables AS all,
            coalesce(array_agg(t.schemaname || '.' || t.tablename ORDER BY 1) FILTER (WHERE t.tablename IS NOT NULL), '{}') AS tables
       FROM pg_publication p LEFT JOIN pg_publication_tables t ON t.pubname = p.pubname
      GROUP BY p.pubname, p.puballtables ORDER BY p.pubname`,
  );
  return rows.map((r) => ({ name: r.name, allTables: r.all, tables: [...r.tables].sort() }));
}

/** A table of the subscription and how far its initial copy got (pg_subscription_rel.srsubstate). */
export interface SubscribedTable {
  readonly table: string;
  /** i: initialize, d: copying, f: copy finished, s: synchronized, r: ready (streaming). */
  readonly state: 'i' | 'd' | 'f' | 's' | 'r';
}

export interface SubscriptionState {
  readonly name: string;
  readonly enabled: boolean;
  readonly publications: readonly string[];
  /** The apply worker runs (pg_stat_subscription has its pid). */
  readonly workerRunning: boolean;
  /** The last publisher WAL position received and confirmed by the apply worker. */
  readonly receivedLsn: string | null;
  readonly latestEndLsn: string | null;
  /** Seconds since the publisher's last message reached the worker. */
  readonly lastMessageAgeSeconds: number | null;
  readonly tables: readonly SubscribedTable[];
  /** The slot on the publisher that keeps WAL for it. */
  readonly slotName: string | null;
}

/** The subscriptions of the database `s` is connected to. */
export async function readSubscriptions(s: SqlSession): Promise<SubscriptionState[]> {
  const subs = await s.query<{
    oid: number;
    name: string;
    enabled: boolean;
    publications: string[];
    slot: string | null;
    pid: number | null;
    received: string | null;
    latest_end: string | null;
    age: number | null;
  }>(
    `SELECT s.oid, s.subname AS name, s.subenabled AS enabled, s.subpublications AS publications,
            s.subslotname AS slot, w.pid, w.received_lsn::text AS received, w.latest_end_lsn::text AS latest_end,
            extract(epoch FROM now() - w.last_msg_receipt_time)::float8 AS age
       FROM pg_subscription s
       LEFT JOIN pg_stat_subscription w ON w.subid = s.oid AND w.relid IS NULL
      WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      ORDER BY s.subname`,
  );
  const rels = await s.query<{ subid: number; tbl: string; state: SubscribedTable['state'] }>(
    `SELECT r.srsubid AS subid, n.nspname || '.' || c.relname AS tbl, r.srsubstate AS state
       FROM pg_subscription_rel r JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      ORDER BY 2`,
  );
  return subs.map((r) => ({
    name: r.name,
    enabled: r.enabled,
    publications: r.publications,
    workerRunning: r.pid !== null,
    receivedLsn: r.received,
    latestEndLsn: r.latest_end,
    lastMessageAgeSeconds: r.age,
    tables: rels.filter((x) => x.subid === r.oid).map((x) => ({ table: x.tbl, state: x.state })),
    slotName: r.slot,
  }));
}

/** A logical slot on the publisher: how far its subscriber confirmed, and how much WAL it holds back. */
export interface LogicalSlotState {
  readonly name: string;
  readonly database: string;
  readonly active: boolean;
  readonly confirmedFlushLsn: string | null;
  /** Bytes of WAL from the slot's restart_lsn to the current position. */
  readonly retainedBytes: number;
  /** Bytes the subscriber has yet to confirm. */
  readonly lagBytes: number;
}

export async function readLogicalSlots(s: SqlSession): Promise<LogicalSlotState[]> {
  const rows = await s.query<{
    name: string;
    database: string;
    active: boolean;
    confirmed: string | null;
    retained: string | null;
    lag: string | null;
  }>(
    `SELECT slot_name AS name, database, active, confirmed_flush_lsn::text AS confirmed,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag
       FROM pg_replication_slots WHERE slot_type = 'logical' ORDER BY slot_name`,
  );
  return rows.map((r) => ({
    name: r.name,
    database: r.database,
    active: r.active,
    confirmedFlushLsn: r.confirmed,
    retainedBytes: Math.max(0, Number(r.retained ?? 0)),
    lagBytes: Math.max(0, Number(r.lag ?? 0)),
  }));
}

/** What the pre-flight check needs to know of one table. */
export interface TableFacts {
  readonly table: string;
  /** r: table, p: partitioned table, and others (views...) that cannot be published. */
  readonly kind: string;
  readonly hasPrimaryKey: boolean;
  /** pg_class.relreplident: d (default: the primary key), n (nothing), f (full), i (an index). */
  readonly replicaIdentity: string;
  readonly unlogged: boolean;
  /** name type, in column order, for comparing the two sides. */
  readonly columns: readonly string[];
}

/** Facts of `tables` (schema.table), or of every ordinary table outside the system schemas with 'all'. */
export async function readTableFacts(
  s: SqlSession,
  tables: readonly string[] | 'all',
): Promise<TableFacts[]> {
  return s.query<TableFacts>(
    `SELECT n.nspname || '.' || c.relname AS "table", c.relkind::text AS kind,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS "hasPrimaryKey",
            c.relreplident::text AS "replicaIdentity", c.relpersistence = 'u' AS unlogged,
            coalesce((SELECT array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
                        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{}') AS columns
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${
        tables === 'all'
          ? "c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
          : "n.nspname || '.' || c.relname = ANY($1::text[])"
      }
      ORDER BY 1`,
    tables === 'all' ? [] : [tables],
  );
}

/** Database-wide facts of the pre-flight check. */
export interface DatabaseFacts {
  readonly largeObjects: number;
  readonly sequences: readonly string[];
  /** Installed extensions, by name. */
  readonly extensions: readonly string[];
  /** Extensions this server could install (its packages have them). */
  readonly availableExtensions: readonly string[];
  readonly collate: string;
  readonly ctype: string;
  /** c (libc) or i (ICU). */
  readonly localeProvider: string;
  readonly serverVersionNum: number;
}

export async function readDatabaseFacts(s: SqlSession): Promise<DatabaseFacts> {
  const [row] = await s.query<{
    lo: number;
    seqs: string[];
    ext: string[];
    avail: string[];
    collate: string;
    ctype: string;
    provider: string;
    version: number;
  }>(
    `SELECT (SELECT count(*) FROM pg_largeobject_metadata)::int AS lo,
            coalesce((SELECT array_agg(schemaname || '.' || sequencename ORDER BY 1) FROM pg_sequences), '{}') AS seqs,
            coalesce((SELECT array_agg(extname::text ORDER BY 1) FROM pg_extension), '{}') AS ext,
            coalesce((SELECT array_agg(name::text ORDER BY 1) FROM pg_available_extensions), '{}') AS avail,
            d.datcollate AS collate, d.datctype AS ctype,
            coalesce(to_jsonb(d) ->> 'datlocprovider', 'c') AS provider,
            current_setting('server_version_num')::int AS version
       FROM pg_database d WHERE d.datname = current_database()`,
  );
  if (!row) throw new Error('current_database() has no pg_database row');
  return {
    largeObjects: row.lo,
    sequences: row.seqs,
    extensions: row.ext,
    availableExtensions: row.avail,
    collate: row.collate,
    ctype: row.ctype,
    localeProvider: row.provider,
    serverVersionNum: row.version,
  };
}
