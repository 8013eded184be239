import { PgreplError } from '../../errors.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import type { SqlSession } from '../../postgres/sql-client.js';
import {
  allowWrites,
  dropSlotIfIdle,
  endSessions,
  fenceLsn as flushedFence,
  readSequences,
  refuseWrites,
  reloadedSince,
  slotsBehind,
  writeSequences,
} from '../../postgres/upgrade-queries.js';
import { dropLeavingSlot } from '../actions/logical-actions.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { pollOn, sqlOn, sqlOnDatabase } from '../context/node-sql.js';
import { observeCluster } from '../observe/observe-cluster.js';
import { onlyPrimary } from '../observe/observation.js';

/** One side of a move: a cluster and how its fence is lifted. */
export interface WriteSide {
  readonly ctx: ClusterContext;
  /**
   * Lifting its fence sets default_transaction_read_only off explicitly (the new cluster's spec
   * refuses writes until its cutover) rather than resetting it to the configuration's.
   */
  readonly liftExplicitly: boolean;
}

export interface MoveOptions {
  readonly databases: readonly string[];
  /** The subscription of database i (from 1) on `to` that carries `from`'s rows; its slot on `from` has the same name. */
  readonly subscription: (i: number) => string;
  /** How long the subscriber may take to confirm every commit made before the fence (ms). */
  readonly budgetMs: number;
  /** Run in each database of `to` after the drain and before `to` takes writes (the reverse slots). */
  readonly beforeLift?: (s: SqlSession, i: number) => Promise<void>;
}

export interface MoveResult {
  readonly from: string;
  readonly to: string;
  /** The LSN on `from`'s primary that every acknowledged commit ends at or before. */
  readonly fenceLsn: string;
  /** Client sessions of `from` ended at the fence (they may have held a read-write transaction). */
  readonly sessionsEnded: number;
  readonly drainMs: number;
  readonly sequences: number;
  /** From refusing writes on `from` to `to` taking them. */
  readonly gapMs: number;
  /** Where the gap went, ms: each part of the move in order. */
  readonly phasesMs: {
    readonly fence: number;
    readonly sessions: number;
    readonly drain: number;
    readonly sequences: number;
    readonly handOver: number;
    readonly lift: number;
  };
}

/** The one primary of `ctx`'s cluster, or E_NO_PRIMARY. */
export async function primaryOf(ctx: ClusterContext): Promise<NodeSpec> {
  const primary = onlyPrimary((await observeCluster(ctx)).nodes)?.node;
  if (!primary)
    throw new PgreplError(
      'E_NO_PRIMARY',
      `cluster ${ctx.spec.cluster} has no single running primary: \`pgrepl status -c ${ctx.spec.source}\` shows its nodes`,
    );
  return primary;
}

/**
 * Moves writes from one cluster to another that subscribes to every table of it, losing none:
 * `from`'s primary refuses writes (default_transaction_read_only, reloaded; every client session
 * that started before the reload ended, as it may hold a read-write transaction), so every
 * acknowledged commit ends before the fence LSN; the subscriptions confirm they flushed up to it
 * (`synchronous_commit = on` on the subscriber); every sequence is set on `to` exactly as on
 * `from`; the subscriptions are disabled; then `to` takes writes. A drain longer than the budget
 * lifts `from`'s fence again and fails with E_UPGRADE_DRAIN: nothing moved.
 *
 * Sessions to every database of both primaries are opened before the fence, so that the write gap
 * holds no connection handshake but the one that proves the reload took effect.
 */
export async function moveWrites(from: WriteSide, to: WriteSide, o: MoveOptions): Promise<MoveResult> {
  const fromPrimary = await primaryOf(from.ctx);
  const toPrimary = await primaryOf(to.ctx);
  const slots = o.databases.map((_, n) => o.subscription(n + 1));
  // A subscription not streaming now could not connect once its publisher refuses writes (it
  // asks for a read-write session): the drain would wait for it in vain, writes refused.
  const idle = await notStreaming(to.ctx, toPrimary, slots, 10_000);
  if (idle.length > 0)
    throw new PgreplError(
      'E_UPGRADE_DRAIN',
      `${idle.join(', ')} on ${to.ctx.spec.cluster} has no apply worker streaming from ${from.ctx.spec.cluster}; nothing was changed: see its server log (\`pgrepl logs\`) and try again`,
    );
  const clock = from.ctx.clock;
  return withSessions(from.ctx, fromPrimary, o.databases, (fromDbs) =>
    withSessions(to.ctx, toPrimary, o.databases, async (toDbs) => {
      const own = await Promise.all(fromDbs.map(backendPid));
      const fence = fromDbs[0] as SqlSession;
      const started = clock.now();
      let mark = started;
      const lap = () => {
        const now = clock.now();
        const ms = now - mark;
        mark = now;
        return Math.round(ms);
      };
      const asked = await refuseWrites(fence);
      // Until `to` takes writes, any failure puts `from` back as it was: no cluster left refusing.
      try {
        const reloaded = await reloadedAt(from.ctx, fromPrimary, asked, started + 2000);
        const fenceMs = lap();
        // Every client session, then any that a fork before the reload started late: none of them
        // may hold a read-write transaction past the fence; sessions after it refuse writes.
        const sessionsEnded = (await endSessions(fence, own)) + (await endSessions(fence, own, reloaded));
        const fenceLsn = await flushedFence(fence);
        const sessionsMs = lap();
        const drained = clock.now();
        for (;;) {
          const behind = await slotsBehind(fence, slots, fenceLsn);
          if (behind.length === 0) break;
          if (clock.now() - drained > o.budgetMs)
            throw new PgreplError(
              'E_UPGRADE_DRAIN',
              `${behind.join(', ')} did not confirm every commit up to ${fenceLsn} within ${o.budgetMs} ms: ` +
                `cluster ${from.ctx.spec.cluster} takes writes again and nothing moved; see \`pgrepl status -c ${to.ctx.spec.source}\` for the subscriptions, or give a larger --drain-budget`,
            );
          await clock.sleep(5);
        }
        const drainMs = clock.now() - drained;
        lap();
        let sequences = 0;
        for (const [n, s] of fromDbs.entries()) {
          const values = await readSequences(s);
          await writeSequences(toDbs[n] as SqlSession, values);
          sequences += values.length;
        }
        const sequencesMs = lap();
        for (const [n, s] of toDbs.entries()) {
          await s.query(`ALTER SUBSCRIPTION ${slots[n]} DISABLE`);
          await o.beforeLift?.(s, n + 1);
        }
        const handOverMs = lap();
        await allowWrites(toDbs[0] as SqlSession, { explicitly: to.liftExplicitly });
        return {
          from: from.ctx.spec.cluster,
          to: to.ctx.spec.cluster,
          fenceLsn,
          sessionsEnded,
          drainMs,
          sequences,
          gapMs: clock.now() - started,
          phasesMs: {
            fence: fenceMs,
            sessions: sessionsMs,
            drain: Math.round(drainMs),
            sequences: sequencesMs,
            handOver: handOverMs,
            lift: lap(),
          },
        };
      } catch (err) {
        const lifted = await allowWrites(fence, { explicitly: from.liftExplicitly }).then(
          () => `cluster ${from.ctx.spec.cluster} takes writes again`,
          (cause: unknown) =>
            `the fence on ${fromPrimary.name} could not be lifted (${(cause as Error).message}): run there ALTER SYSTEM ${from.liftExplicitly ? 'SET default_transaction_read_only = off' : 'RESET default_transaction_read_only'}; SELECT pg_reload_conf()`,
        );
        for (const [n, s] of toDbs.entries())
          await s.query(`ALTER SUBSCRIPTION ${slots[n]} ENABLE`).catch(() => undefined);
        from.ctx.events.emit({
          event: 'note',
          message: `${lifted}: the move to ${to.ctx.spec.cluster} stopped before it took any write`,
        });
        throw err;
      }
    }),
  );
}

/**
 * The server time by which new sessions refuse writes: a fresh session is asked until the
 * postmaster has read the configuration asked for at `asked` (it does so asynchronously; the
 * sessions it starts after that inherit it).
 */
async function reloadedAt(
  ctx: ClusterContext,
  node: NodeSpec,
  asked: string,
  deadline: number,
): Promise<string> {
  for (;;) {
    // A new session each time: only a session started after the reload shows it.
    const at = await sqlOn(ctx, node, (s) => reloadedSince(s, asked));
    if (at !== null) return at;
    if (ctx.clock.now() > deadline)
      throw new PgreplError(
        'E_UPGRADE_DRAIN',
        `${node.name} still lets new sessions write 2 s after the reload that refuses them; is its postgresql.auto.conf writable?`,
      );
    await ctx.clock.sleep(5);
  }
}

async function backendPid(s: SqlSession): Promise<number> {
  const [row] = await s.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return row?.pid ?? 0;
}

/**
 * Sets, on every node of `ctx`'s cluster but its primary, whether sessions refuse writes by
 * default, as the primary now does: a replica promoted later (a failover of the cluster an upgrade
 * left) must not come up taking writes beside the other cluster's primary. Returns the nodes that
 * could not be reached (a stopped one reads its postgresql.auto.conf when it starts).
 */
export async function matchReplicas(
  ctx: ClusterContext,
  primary: NodeSpec,
  refuse: boolean,
): Promise<string[]> {
  const missed: string[] = [];
  for (const node of ctx.spec.nodes.filter((n) => n.name !== primary.name))
    await sqlOn(ctx, node, async (s) => {
      if (refuse) await refuseWrites(s);
      else await allowWrites(s, { explicitly: false });
    }).catch(() => missed.push(node.name));
  return missed;
}

/**
 * The subscriptions of `names` on `node` whose apply worker does not stream (yet), after waiting
 * up to `timeoutMs` for them: a new one's worker starts within a second or so of the launcher's turn.
 */
export async function notStreaming(
  ctx: ClusterContext,
  node: NodeSpec,
  names: readonly string[],
  timeoutMs: number,
): Promise<string[]> {
  const idleOf = async (s: SqlSession) => {
    const streaming = await s.query<{ name: string }>(
      `SELECT subname AS name FROM pg_stat_subscription
        WHERE subname = ANY($1::text[]) AND relid IS NULL AND pid IS NOT NULL AND received_lsn IS NOT NULL`,
      [names],
    );
    return names.filter((n) => !streaming.some((r) => r.name === n));
  };
  const streaming = await pollOn(
    ctx,
    node,
    async (s) => ((await idleOf(s)).length === 0 ? true : undefined),
    { timeoutMs, intervalMs: 100 },
  );
  return streaming ? [] : sqlOn(ctx, node, idleOf);
}

/** Runs `fn` with a session open to each of `databases` on `node`, in order; closes them all after. */
async function withSessions<T>(
  ctx: ClusterContext,
  node: NodeSpec,
  databases: readonly string[],
  fn: (sessions: SqlSession[]) => Promise<T>,
  open: SqlSession[] = [],
): Promise<T> {
  const next = databases[open.length];
  if (next === undefined) return fn(open);
  return sqlOnDatabase(ctx, node, next, (s) => withSessions(ctx, node, databases, fn, [...open, s]));
}

/**
 * Drops subscription `name` of `database` on `subscriber`'s primary, then its slot on
 * `publisher`'s. Not through DROP SUBSCRIPTION's own connection to the publisher: that asks for a
 * read-write session, and an upgrade's publisher refuses writes by then.
 */
export async function dropSubscription(
  subscriber: ClusterContext,
  publisher: ClusterContext,
  database: string,
  name: string,
): Promise<void> {
  await sqlOnDatabase(subscriber, await primaryOf(subscriber), database, async (s) => {
    const [exists] = await s.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())',
      [name],
    );
    if (exists?.n === 1) await dropLeavingSlot(s, name);
  });
  const source = await primaryOf(publisher);
  const deadline = publisher.clock.now() + 10_000;
  await sqlOn(publisher, source, async (s) => {
    // The walsender of a subscription just disabled takes a moment to go.
    while (await dropSlotIfIdle(s, name)) {
      if (publisher.clock.now() > deadline)
        throw new PgreplError(
          'E_TIMEOUT',
          `slot ${name} on ${source.name} is still in use 10 s after its subscription was dropped; drop it there with pg_drop_replication_slot('${name}')`,
        );
      await publisher.clock.sleep(20);
    }
  });
}
