import type { SqlSession } from './sql-client.js';

/** What one running server says about itself. LSNs are PostgreSQL's text form (e.g. 0/3000148). */
export interface InstanceState {
  readonly inRecovery: boolean;
  readonly serverVersionNum: number;
  readonly timeline: number | null;
  readonly currentLsn: string | null;
  readonly receiveLsn: string | null;
  readonly replayLsn: string | null;
  /** pg_is_wal_replay_paused() on a replica (a pause requested counts); null on a primary. */
  readonly replayPaused: boolean | null;
  /**
   * default_transaction_read_only is on: a primary that refuses writes, as `pgrepl upgrade` fences
   * the cluster it leaves (and the new one until its cutover); the load balancer's checks skip it.
   */
  readonly writesRefused: boolean;
  /**
   * A replica's replay lag in seconds: 0 when it replayed all it received, else the age of the last
   * transaction it replayed (CloudNativePG's cnpg_pg_replication_lag); null on a primary.
   */
  readonly replayLagSeconds: number | null;
  /** A primary's transactions committed since its statistics were reset, all databases; null on a replica. */
  readonly commits: number | null;
  /** A primary's WAL archiver (archive_mode on); null on a replica or without archiving. */
  readonly archiver: ArchiverFacts | null;
}

/** What pg_stat_archiver and the archive status directory say on a primary. */
export interface ArchiverFacts {
  /** Failures since the statistics were reset (a counter). */
  readonly failedCount: number;
  readonly lastFailedWal: string | null;
  readonly lastArchivedWal: string | null;
  /** Seconds since the last segment was archived; null when none was yet. */
  readonly lastArchivedAgeSeconds: number | null;
  /** Its last attempt failed: the last failure came after the last success. */
  readonly failing: boolean;
  /** Finished segments waiting to be archived (.ready files): the archive's lag, in segments. */
  readonly pendingSegments: number;
}

/** A replica's WAL receiver, from pg_stat_wal_receiver. */
export interface WalReceiverState {
  readonly status: string;
  readonly senderHost: string | null;
  readonly senderPort: number | null;
  readonly slotName: string | null;
  readonly receivedTimeline: number | null;
}

/** One row of a primary's pg_stat_replication. */
export interface SenderState {
  readonly applicationName: string;
  readonly clientAddr: string | null;
  readonly state: string;
  readonly flushLsn: string | null;
  readonly replayLsn: string | null;
  readonly lagBytes: number | null;
  readonly writeLagMs: number | null;
  readonly flushLagMs: number | null;
  readonly replayLagMs: number | null;
  readonly syncState: string;
  /** The TLS version the connection runs over (pg_stat_ssl), null when it is not encrypted. */
  readonly tls: string | null;
}

/** One row of pg_replication_slots. */
export interface SlotState {
  readonly name: string;
  readonly type: string;
  readonly active: boolean;
  readonly restartLsn: string | null;
  readonly walStatus: string | null;
  readonly retainedBytes: number | null;
}

/** A setting from pg_file_settings that pgrepl's file sets but that is not in effect. */
export interface UnappliedSetting {
  readonly name: string;
  readonly why: string;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export async function readInstanceState(s: SqlSession): Promise<InstanceState> {
  const [row] = await s.query<Record<string, unknown>>(`
    SELECT pg_is_in_recovery() AS in_recovery,
           current_setting('server_version_num')::int AS version_num,
           CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
           pg_last_wal_receive_lsn()::text AS receive_lsn,
           pg_last_wal_replay_lsn()::text AS replay_lsn,
           CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS replay_paused,
           -- From the files, not this session (pgrepl's own sessions may always write).
           coalesce((SELECT setting::bool FROM pg_file_settings
                      WHERE name = 'default_transaction_read_only' AND applied), false) AS writes_refused,
           CASE WHEN NOT pg_is_in_recovery() THEN NULL
                WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
                ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
           END AS replay_lag_s,
           CASE WHEN NOT pg_is_in_recovery()
                THEN (SELECT sum(xact_commit) FROM pg_stat_database)::float8
           END AS commits,
           CASE WHEN NOT pg_is_in_recovery() AND current_setting('archive_mode') <> 'off'
                THEN (SELECT json_build_object(
                        'failed', failed_count,
                        'lastFailed', last_failed_wal,
                        'lastArchived', last_archived_wal,
                        'age', extract(epoch FROM now() - last_archived_time),
                        'failing', coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false),
                        'pending', (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'))
                      FROM pg_stat_archiver)
           END AS archiver,
           CASE WHEN pg_is_in_recovery()
                -- What it receives, else what it replayed up to (minRecoveryPoint moves with replay),
                -- and its last restartpoint only when neither is known: that one lags behind.
                THEN COALESCE((SELECT received_tli FROM pg_stat_wal_receiver),
                              NULLIF((SELECT min_recovery_end_timeline FROM pg_control_recovery()), 0),
                              (SELECT timeline_id FROM pg_control_checkpoint()))
                ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
           END AS timeline`);
  if (!row) throw new Error('empty answer to the instance state query');
  return {
    inRecovery: row['in_recovery'] === true,
    serverVersionNum: Number(row['version_num']),
    timeline: num(row['timeline']),
    currentLsn: (row['current_lsn'] as string | null) ?? null,
    receiveLsn: (row['receive_lsn'] as string | null) ?? null,
    replayLsn: (row['replay_lsn'] as string | null) ?? null,
    replayPaused: (row['replay_paused'] as boolean | null) ?? null,
    writesRefused: row['writes_refused'] === true,
    replayLagSeconds: num(row['replay_lag_s']),
    commits: num(row['commits']),
    archiver: archiverFacts(row['archiver']),
  };
}

function archiverFacts(v: unknown): ArchiverFacts | null {
  if (v === null || v === undefined) return null;
  const a = v as Record<string, unknown>;
  return {
    failedCount: Number(a['failed']),
    lastFailedWal: (a['lastFailed'] as string | null) ?? null,
    lastArchivedWal: (a['lastArchived'] as string | null) ?? null,
    lastArchivedAgeSeconds: num(a['age']),
    failing: a['failing'] === true,
    pendingSegments: Number(a['pending']),
  };
}

/** The TLS version of this very connection, null when it is not encrypted. */
export async function readOwnTls(s: SqlSession): Promise<string | null> {
  const [row] = await s.query<{ v: string | null }>(
    'SELECT CASE WHEN ssl THEN version END AS v FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
  );
  return row?.v ?? null;
}

export async function readWalReceiver(s: SqlSession): Promise<WalReceiverState | null> {
  const [row] = await s.query<Record<string, unknown>>(
    'SELECT status, sender_host, sender_port, slot_name, received_tli FROM pg_stat_wal_receiver',
  );
  if (!row) return null;
  return {
    status: String(row['status']),
    senderHost: (row['sender_host'] as string | null) ?? null,
    senderPort: num(row['sender_port']),
    slotName: (row['slot_name'] as string | null) ?? null,
    receivedTimeline: num(row['received_tli']),
  };
}

export async function readSenders(s: SqlSession): Promise<SenderState[]> {
  const rows = await s.query<Record<string, unknown>>(`
    SELECT application_name, host(client_addr) AS client_addr, state, flush_lsn::text AS flush_lsn,
           (SELECT CASE WHEN ssl THEN version END FROM pg_stat_ssl WHERE pid = r.pid) AS tls,
           replay_lsn::text AS replay_lsn,
           pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 AS lag_bytes,
           (extract(epoch FROM write_lag) * 1000)::float8 AS write_lag_ms,
           (extract(epoch FROM flush_lag) * 1000)::float8 AS flush_lag_ms,
           (extract(epoch FROM replay_lag) * 1000)::float8 AS replay_lag_ms,
           sync_state
      FROM pg_stat_replication r
     ORDER BY application_name`);
  return rows.map((r) => ({
    applicationName: String(r['application_name']),
    clientAddr: (r['client_addr'] as string | null) ?? null,
    state: String(r['state']),
    flushLsn: (r['flush_lsn'] as string | null) ?? null,
    replayLsn: (r['replay_lsn'] as string | null) ?? null,
    lagBytes: num(r['lag_bytes']),
    writeLagMs: num(r['write_lag_ms']),
    flushLagMs: num(r['flush_lag_ms']),
    replayLagMs: num(r['replay_lag_ms']),
    syncState: String(r['sync_state']),
    tls: (r['tls'] as string | null) ?? null,
  }));
}

export async function readSlots(s: SqlSession): Promise<SlotState[]> {
  const rows = await s.query<Record<string, unknown>>(`
    SELECT slot_name, slot_type, active, restart_lsn::text AS restart_lsn, wal_status,
           CASE WHEN pg_is_in_recovery() OR restart_lsn IS NULL THEN NULL
                ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 END AS retained
      FROM pg_replication_slots
     ORDER BY slot_name`);
  return rows.map((r) => ({
    name: String(r['slot_name']),
    type: String(r['slot_type']),
    active: r['active'] === true,
    restartLsn: (r['restart_lsn'] as string | null) ?? null,
    walStatus: (r['wal_status'] as string | null) ?? null,
    retainedBytes: num(r['retained']),
  }));
}

/** What pg_authid says of a role: whether it may log in for replication, and its stored password. */
export interface RoleState {
  readonly loginReplication: boolean;
  /** The SCRAM verifier (superuser only can read it); null without a password. */
  readonly verifier: string | null;
}

/** `user`'s role as pg_authid has it; null when there is no such role. */
export async function readRole(s: SqlSession, user: string): Promise<RoleState | null> {
  const [row] = await s.query<{ ok: boolean; verifier: string | null }>(
    'SELECT rolcanlogin AND rolreplication AS ok, rolpassword AS verifier FROM pg_authid WHERE rolname = $1',
    [user],
  );
  return row ? { loginReplication: row.ok === true, verifier: row.verifier ?? null } : null;
}

/**
 * Settings from `configFile` that are not in effect: overridden later (postgresql.auto.conf), waiting
 * for a restart, or rejected. pg_file_settings reads the files as they are now, so call after reload.
 */
export async function readUnappliedSettings(s: SqlSession, configFile: string): Promise<UnappliedSetting[]> {
  const rows = await s.query<{
    name: string;
    applied: boolean;
    error: string | null;
    overridden_by: string | null;
  }>(
    `SELECT f.name, f.applied, f.error,
            (SELECT o.sourcefile || ':' || o.sourceline FROM pg_file_settings o
              WHERE o.name = f.name AND o.applied AND o.seqno > f.seqno LIMIT 1) AS overridden_by
       FROM pg_file_settings f
      WHERE f.sourcefile = $1 AND NOT f.applied`,
    [configFile],
  );
  return rows.map((r) => ({
    name: r.name,
    why: r.overridden_by ? `overridden by ${r.overridden_by}` : (r.error ?? 'not applied'),
  }));
}

/** Whether a restart is needed for settings already read from the files. */
/**
 * In one round trip: the settings that wait for a restart to take effect (`pending`), and those
 * that change only when the server restarts at all (context `postmaster`).
 */
export async function readRestartSettings(
  s: SqlSession,
): Promise<{ pending: string[]; restartOnly: string[] }> {
  const rows = await s.query<{ name: string; pending: boolean; postmaster: boolean }>(
    `SELECT name, pending_restart AS pending, context = 'postmaster' AS postmaster FROM pg_settings
      WHERE pending_restart OR context = 'postmaster' ORDER BY name`,
  );
  return {
    pending: rows.filter((r) => r.pending).map((r) => r.name),
    restartOnly: rows.filter((r) => r.postmaster).map((r) => r.name),
  };
}
