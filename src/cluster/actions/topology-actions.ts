import { PgreplError, SqlError } from '../../errors.js';
import { parseLsn } from '../../postgres/lsn.js';
import { promoteStandby, readReplayProgress } from '../../postgres/promotion.js';
import { ensurePhysicalSlot } from '../../postgres/replication-admin.js';
import type { SqlSession } from '../../postgres/sql-client.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { controlOf } from './control-of.js';
import { configFor } from './node-actions.js';
import { pollSession, sqlOn } from '../context/node-sql.js';

/** What a standby reports of its progress, and since when its replay position has not moved. */
export interface ReplayProgress {
  readonly receive: string | null;
  readonly replay: string | null;
  readonly replayStillForMs: number;
}

/**
 * Whether a standby has replayed all it can: everything it received (and past `beyond`, if given).
 * With `settleMs`, also when replay has stood still that long short of what was received: a primary
 * that died while a record was half sent leaves an incomplete record that no one can ever complete
 * (PostgreSQL's promotion replays every complete record anyway).
 */
export function replayCaughtUp(p: ReplayProgress, o: { beyond?: string; settleMs?: number }): boolean {
  if (p.replay === null) return false;
  const replay = parseLsn(p.replay);
  if (o.beyond !== undefined && replay <= parseLsn(o.beyond)) return false;
  if (p.receive === null || replay >= parseLsn(p.receive)) return true;
  return o.settleMs !== undefined && p.replayStillForMs >= o.settleMs;
}

/** Waits on `s`, a connection to `node`, until replayCaughtUp() says so; returns the replayed position. */
export async function waitReplayed(
  ctx: ClusterContext,
  s: SqlSession,
  node: NodeSpec,
  opts: { beyond?: string; settleMs?: number; timeoutMs: number },
): Promise<string> {
  const { clock } = ctx;
  let last: ReplayProgress = { receive: null, replay: null, replayStillForMs: 0 };
  let movedAt = clock.now();
  const check = async (session: SqlSession) => {
    const now = await readReplayProgress(session);
    if (now.replay !== last.replay) movedAt = clock.now();
    last = { ...now, replayStillForMs: clock.now() - movedAt };
    return replayCaughtUp(last, opts) ? (last.replay as string) : undefined;
  };
  const deadline = clock.now() + opts.timeoutMs;
  const replayed = await pollSession(s, check, { deadline, intervalMs: 10, clock, signal: ctx.abort });
  if (replayed !== undefined) return replayed;
  throw new PgreplError(
    'E_TIMEOUT',
    `${node.name} did not replay ${opts.beyond ? `past ${opts.beyond}` : 'all it received'} in time (received ${last.receive}, replayed ${last.replay})`,
  );
}

/**
 * Promotes a standby over `s`, then gives it a primary's configuration (no upstream). Safe to run
 * again: a node that is no longer in recovery (an earlier run promoted it and was killed before it
 * recorded so) is only given its configuration.
 */
export async function promote(ctx: ClusterContext, node: NodeSpec, s: SqlSession): Promise<void> {
  const [row] = await s.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
  const limit = ctx.timeouts.promoteMs;
  if (row?.r !== false && !(await promoteStandby(s, limit)))
    throw new PgreplError(
      'E_TIMEOUT',
      `${node.name} did not finish promotion within ${limit / 1000} s; see its log`,
    );
  await renderPrimary(ctx, node);
}

/** Writes a primary's configuration (no upstream) for `node` as the spec has it, and reloads it. */
export async function renderPrimary(ctx: ClusterContext, node: NodeSpec): Promise<void> {
  const control = controlOf(ctx, node);
  control.writeConfig(configFor(ctx, node, undefined));
  await control.reload();
}

/**
 * The primary's WAL position once it runs the synchronous_standby_names its spec renders (after
 * renderPrimary). A reload reaches each process when it next wakes; `s`'s backend takes it at its
 * next statement, so this asks until that backend shows the new value, then reads the position: a
 * commit past it was acknowledged under the new setting.
 */
export async function syncSettingTakenAt(
  ctx: ClusterContext,
  node: NodeSpec,
  s: SqlSession,
): Promise<string> {
  const want = configFor(ctx, node, undefined).settings['synchronous_standby_names'] ?? '';
  const taken = await pollSession(
    s,
    async (q) => {
      const [row] = await q.query<{ names: string; lsn: string }>(
        "SELECT current_setting('synchronous_standby_names') AS names, pg_current_wal_lsn()::text AS lsn",
      );
      return row !== undefined && row.names === want ? row.lsn : undefined;
    },
    {
      deadline: ctx.clock.now() + ctx.timeouts.reloadMs,
      intervalMs: 10,
      clock: ctx.clock,
      signal: ctx.abort,
    },
  );
  if (taken !== undefined) return taken;
  throw new PgreplError(
    'E_TIMEOUT',
    `${node.name} does not run synchronous_standby_names = '${want}' ${ctx.timeouts.reloadMs} ms after its reload; see its log`,
  );
}

/** Creates over `s` on `primary` the slot of every other node, so any of them can stream from it at once. */
export async function createSlotsFor(ctx: ClusterContext, primary: NodeSpec, s: SqlSession): Promise<void> {
  for (const n of ctx.spec.nodes) if (n.name !== primary.name) await ensurePhysicalSlot(s, n.name);
}

/** Points a running or stopped replica at a new upstream; a running one reloads (no restart in PG 13+). */
export async function repoint(ctx: ClusterContext, node: NodeSpec, upstream: NodeSpec): Promise<void> {
  const control = controlOf(ctx, node);
  control.writeConfig(configFor(ctx, node, upstream));
  await control.reload();
}

/** Turns a stopped data directory into a standby of `upstream`: its config plus standby.signal. */
/** Makes a stopped node a standby of `upstream`, or of no one (it replays what it holds, read-only). */
export function makeStandby(ctx: ClusterContext, node: NodeSpec, upstream: NodeSpec | undefined): void {
  controlOf(ctx, node).makeStandby(configFor(ctx, node, upstream));
}

/**
 * Drops the slots a standby carries from its time as a primary: a standby never advances them,
 * so they would only hold its WAL. Promotion creates fresh ones (createSlotsFor).
 */
export async function dropSlotsOnStandby(ctx: ClusterContext, node: NodeSpec): Promise<void> {
  await sqlOn(ctx, node, async (s) => {
    const slots = await s.query<{ slot_name: string }>(
      'SELECT slot_name FROM pg_replication_slots WHERE NOT active',
    );
    for (const slot of slots) {
      try {
        await s.query('SELECT pg_drop_replication_slot($1)', [slot.slot_name]);
      } catch (err) {
        // A replica that still streams from this node took its slot since the look (SQLSTATE
        // 55006): it is re-pointed next, and the slot is left, not fought over.
        if (!(err instanceof SqlError && err.sqlstate === '55006')) throw err;
      }
    }
  });
}
