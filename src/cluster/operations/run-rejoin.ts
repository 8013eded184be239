import { PgreplError } from '../../errors.js';
import type { LostWal } from '../../postgres/run-rewind.js';
import { ensurePhysicalSlot } from '../../postgres/replication-admin.js';
import { STEP_HANDLERS } from './apply-plan.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { beginJournal } from '../store/journal.js';
import type { Journal } from '../store/journal.js';
import { checkDivergence } from '../observe/check-divergence.js';
import { controlOf } from '../actions/control-of.js';
import { nodeOf, sqlOn, waitStreaming } from '../actions/node-actions.js';
import { observeCluster } from '../observe/observe-cluster.js';
import { decideRejoinSource } from '../decide/decide-rejoin-source.js';
import { topologyGuard } from '../decide/topology-guard.js';
import { describeSplit } from '../observe/describe-split.js';
import type { Reporter } from '../context/reporter.js';
import { dropSlotsOnStandby, makeStandby } from '../actions/topology-actions.js';

export interface RejoinResult {
  node: string;
  primary: string;
  method: 'rewind' | 'reclone' | 'none needed';
  /** Why a re-clone was done instead of a rewind. */
  recloneReason: string | null;
  /** WAL that existed only on this node and was thrown away, with its commits. */
  discarded: LostWal | null;
  /** What pg_rewind copied from the primary (rewind only), mostly the WAL files the primary holds. */
  rewindCopiedMb: number | null;
  /** Where the old data directory was moved (re-clone only); the user removes it. */
  movedAside: string | null;
  ms: number;
}

/**
 * Brings a former primary or a diverged replica back as a replica of the current primary:
 * pg_rewind first (after a CHECKPOINT on the primary, or pg_rewind may wrongly find nothing to do),
 * a full re-clone when asked or when rewinding is impossible. A diverged node is never started as
 * a replica without being rewound, and what it alone had is listed, not silently dropped.
 */
export async function runRejoin(
  ctx: ClusterContext,
  name: string,
  o: { reclone: boolean; reporter: Reporter; keep?: string | undefined },
  say: (m: string) => void,
  resumed?: Journal,
): Promise<RejoinResult> {
  const began = ctx.clock.now();
  const node = nodeOf(ctx, name);
  const control = controlOf(ctx, node);
  const obs = await observeCluster(ctx);
  // A split brain is decideRejoinSource's to explain (it needs --keep).
  const guard = topologyGuard(obs, { actsOn: [name], allowSplitBrain: true });
  if (guard) throw new PgreplError(guard.code, `${guard.reason}; nothing was changed`);
  const source = decideRejoinSource(obs, name, o.keep);
  if (source.kind === 'refuse') {
    const sides = source.sides.length > 0 ? await describeSplit(ctx, source.sides) : [];
    throw new PgreplError(
      source.code,
      `${source.reason}; nothing was changed${sides.map((l) => `\n  ${l}`).join('')}`,
    );
  }
  const primary = nodeOf(ctx, source.primary);
  const journal =
    resumed ??
    (await beginJournal(
      ctx,
      {
        op: 'rejoin',
        resume: ['rejoin', name, ...(o.reclone ? ['--reclone'] : []), ...(o.keep ? ['--keep', o.keep] : [])],
        facts: { node: name, primary: primary.name },
      },
      say,
    ));
  const rewindStep = `rewind ${name}`;
  // pg_rewind killed half-way leaves a directory that cannot be trusted (the PostgreSQL docs say
  // to take a fresh copy); one that finished needs only to be started as a standby.
  const rewindInterrupted =
    resumed !== undefined && resumed.current === rewindStep && !resumed.hasDone(rewindStep);
  const rewindDone = resumed?.hasDone(rewindStep) ?? false;
  // A re-clone after a rewound node could not stream: its directory is already moved aside.
  const recloneStep = `re-clone ${name}`;
  const recloneBegun =
    resumed !== undefined && (resumed.current === recloneStep || resumed.hasDone(recloneStep));
  let method: RejoinResult['method'] = 'reclone';
  let recloneReason: string | null = o.reclone
    ? 'asked for with --reclone'
    : rewindInterrupted
      ? 'pgrepl was killed while pg_rewind ran, so the directory cannot be trusted'
      : recloneBegun
        ? `pgrepl was killed while it re-cloned ${name}`
        : null;
  let discarded: LostWal | null = null;
  let rewindCopiedMb: number | null = null;
  let movedAside: string | null = null;
  // Every step is safe to repeat, and the node stays stopped and fenced until the end: a failed
  // rejoin leaves nothing half-done, so it clears its journal and can simply be run again.
  try {
    await journal.step(`stop ${name}`, async () => {
      await control.stop('fast').catch(() => control.stop('immediate'));
      // A crashed node's postmaster may still be an unreaped zombie; pg_rewind would find its lock.
      await control.waitGone();
    });
    await journal.step(`slot ${name} on ${primary.name}`, () =>
      sqlOn(ctx, primary, (s) => ensurePhysicalSlot(s, name)).then(() => undefined),
    );

    if (rewindDone && !recloneBegun) {
      method = 'rewind';
    } else if (recloneReason === null) {
      const check = await sqlOn(ctx, primary, async (s) => {
        // pg_rewind compares timelines from the control files; the promoted primary's must show its
        // new one, or pg_rewind finds "no rewind required" and leaves a diverged node (the trap).
        await s.query('CHECKPOINT');
        return checkDivergence(ctx, node, s);
      });
      const { history, divergence } = check;
      // What only this node has: on the primary's own timeline, its WAL from where it forked; on an
      // older one, its WAL past the point where that timeline ended in the primary's history.
      // Listed before pg_rewind or a re-clone throws it away.
      const branch = history.history.find((h) => h.timeline === check.control.timeline);
      if (divergence.kind === 'diverged') {
        discarded = check.ownWal;
        recloneReason = `${name} diverged from ${primary.name} without a timeline change (pg_rewind cannot see that): ${divergence.reason}`;
      } else {
        if (branch) {
          const own = await control.commitsAfter(branch.endedAt, check.control);
          if (own && own.to !== own.from) discarded = own;
        }
        // jit=off: pg_rewind lists the source's files with one recursive query whose estimated cost
        // is in the millions, so PostgreSQL JIT-compiles it: ~0.3 s of compiling for 13 ms of work.
        const conninfo = `host=${primary.host} port=${primary.port} user=${ctx.spec.superuser.name} dbname=postgres passfile=${ctx.paths.superuserPassfile} options='-c jit=off'`;
        // pg_rewind finishes the crash recovery of a node that died by itself (single-user mode, no listener).
        const rewound = await journal.step(rewindStep, () => control.rewind(conninfo));
        if (rewound && !rewound.ok) {
          recloneReason = `pg_rewind could not rewind it: ${rewound.error ?? 'unknown error'}`;
        } else if (rewound?.noRewindRequired) {
          method = 'none needed';
        } else {
          method = 'rewind';
          rewindCopiedMb = rewound?.copiedMb ?? null;
        }
      }
    }

    const reclone = async (reason: string) => {
      method = 'reclone';
      recloneReason = reason;
      say(`re-cloning ${name}: ${reason}`);
      // A resumed re-clone may find the directory already moved aside (and a clone under way).
      movedAside = control.moveAside() ?? movedAside;
      await STEP_HANDLERS.clone(
        ctx,
        { kind: 'clone', node: name, upstream: primary.name, reason },
        { reporter: o.reporter },
      );
      await control.start();
      await waitStreaming(ctx, node, primary);
    };
    if (recloneReason !== null) {
      const reason = recloneReason;
      // Journaled: a resume after a kill here finds the directory moved aside and clones again.
      await journal.step(recloneStep, () => reclone(reason));
    } else {
      makeStandby(ctx, node, primary);
      const logFrom = control.logLength();
      await control.start();
      // pg_rewind and pg_basebackup leave pg_replslot empty; only a node left as it was still carries
      // the slots of its time as a primary.
      if (method === 'none needed') await dropSlotsOnStandby(ctx, node);
      try {
        await waitStreaming(ctx, node, primary, ctx.timeouts.streamingMs, logFrom);
      } catch (err) {
        // Behind the oldest WAL the primary keeps, the node can never catch up by streaming (after a
        // failover, or a slot lost to max_slot_wal_keep_size): only a fresh copy brings it back.
        if (!(err instanceof PgreplError && err.code === 'E_WAL_REMOVED')) throw err;
        await journal.step(recloneStep, async () => {
          await control.stop('fast');
          await reclone(err.message);
        });
      }
    }
    await ctx.store.setFenced(name, false);
  } finally {
    await journal.finish();
  }
  return {
    node: name,
    primary: primary.name,
    method,
    recloneReason,
    discarded,
    rewindCopiedMb,
    movedAside,
    ms: ctx.clock.now() - began,
  };
}
