import { PgreplError } from '../../errors.js';
import { verifyFullConninfo } from '../../postgres/render-postgresql-conf.js';
import type { LostWal } from '../../postgres/run-rewind.js';
import { ensurePhysicalSlot } from '../../postgres/replication-admin.js';
import { STEP_HANDLERS } from './apply-plan.js';
import { hostOf } from '../context/cluster-context.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { beginJournal } from './journal.js';
import type { Journal } from './journal.js';
import { checkDivergence } from '../observe/check-divergence.js';
import type { DivergenceCheck } from '../observe/check-divergence.js';
import type { NodeControl } from '../actions/node-control.js';
import { decideRejoin } from '../decide/decide-rejoin.js';
import type { RejoinFacts } from '../decide/decide-rejoin.js';
import { controlOf } from '../actions/control-of.js';
import { waitStreaming } from '../actions/node-actions.js';
import { readStanza } from '../actions/backup-actions.js';
import { nodeOf, sqlOn } from '../context/node-sql.js';
import { observeCluster } from '../observe/observe-cluster.js';
import { localDir, onlyPrimary } from '../observe/observation.js';
import type { ClusterObservation } from '../observe/observation.js';
import type { Divergence } from '../observe/wal-divergence.js';
import { recordHistory } from './record-history.js';
import { decideRejoinSource } from '../decide/decide-rejoin-source.js';
import { topologyGuard } from '../decide/topology-guard.js';
import { describeSplit } from './describe-split.js';
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
  o: {
    reclone: boolean;
    keep?: string | undefined;
    /** `--from-backup`: re-clone, from the repository. */
    fromBackup?: boolean;
    /** A re-clone, when one is needed, restores the repository's newest backup (`backup.clone: backup`). */
    cloneFromRepository?: boolean;
  },
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
  const rewindStep = `rewind ${name}`;
  const recloneStep = `re-clone ${name}`;
  // pg_rewind killed half-way leaves a directory that cannot be trusted (the PostgreSQL docs say
  // to take a fresh copy); one that finished needs only to be started as a standby. A re-clone
  // begun finds the directory already moved aside.
  let facts: RejoinFacts = {
    node: name,
    primary: primary.name,
    // A copy from the repository is a re-clone that leaves the primary alone.
    askedReclone: o.fromBackup ? '--from-backup' : o.reclone ? '--reclone' : false,
    streamsNow: streamsFrom(obs, name, primary.name),
    hasData: hasData(obs, name),
    resumed: resumed
      ? {
          rewindDone: resumed.hasDone(rewindStep),
          rewindInterrupted: resumed.current === rewindStep && !resumed.hasDone(rewindStep),
          recloneBegun: resumed.current === recloneStep || resumed.hasDone(recloneStep),
        }
      : null,
    divergence: observedFollowing(obs, name, primary.name),
    rewound: null,
    walRemoved: null,
  };
  const first = decideRejoin(facts);
  if (first.kind === 'nothing') {
    ctx.events.emit({ event: 'decision', op: 'rejoin', reason: first.reason });
    return {
      node: name,
      primary: primary.name,
      method: 'none needed',
      recloneReason: null,
      discarded: null,
      rewindCopiedMb: null,
      movedAside: null,
      ms: ctx.clock.now() - began,
    };
  }
  // Only now that there is something to do: a rejoin that changes nothing leaves no journal.
  const journal =
    resumed ??
    (await beginJournal(ctx, {
      op: 'rejoin',
      resume: [
        'rejoin',
        name,
        ...(o.reclone ? ['--reclone'] : []),
        ...(o.fromBackup ? ['--from-backup'] : []),
        ...(o.keep ? ['--keep', o.keep] : []),
      ],
      facts: { node: name, primary: primary.name },
    }));
  let method: RejoinResult['method'] = 'reclone';
  let recloneReason: string | null = null;
  let discarded: LostWal | null = null;
  let rewindCopiedMb: number | null = null;
  let movedAside: string | null = null;
  const reclone = async (reason: string) => {
    // From the repository when asked, and when it holds a backup: an empty one is no reason to fail.
    const fromRepository =
      o.fromBackup === true ||
      (o.cloneFromRepository === true && (await readStanza(ctx)).backups.some((b) => !b.error));
    ctx.events.emit({
      event: 'action',
      node: name,
      message: `re-cloning ${name}${fromRepository ? ' from the backup repository' : ''}: ${reason}`,
    });
    await control.stop('fast');
    // A resumed re-clone may find the directory already moved aside (and a clone under way).
    movedAside = control.moveAside() ?? movedAside;
    await STEP_HANDLERS.clone(
      ctx,
      {
        kind: 'clone',
        node: name,
        upstream: primary.name,
        reason,
        ...(fromRepository ? { source: 'repository' as const } : {}),
      },
      {},
    );
    await control.start();
    await waitStreaming(ctx, node, primary);
  };
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
    for (let done = false; !done;) {
      const next = decideRejoin(facts);
      if (next.kind === 'nothing') {
        done = true;
      } else if (next.kind === 'check') {
        const check = await sqlOn(ctx, primary, (s) => checkDivergence(ctx, node, s));
        discarded = await ownWalOf(control, check);
        facts = { ...facts, divergence: check.divergence };
      } else if (next.kind === 'rewind') {
        // jit=off: pg_rewind lists the source's files with one recursive query whose estimated cost
        // is in the millions, so PostgreSQL JIT-compiles it: ~0.3 s of compiling for 13 ms of work.
        // The promoted primary's control file must show its new timeline before pg_rewind reads it.
        await sqlOn(ctx, primary, (s) => s.query('CHECKPOINT'));
        const conninfo = [
          `host=${primary.host} port=${primary.port} user=${ctx.spec.superuser.name} dbname=postgres`,
          `passfile=${ctx.paths.superuserPassfile} options='-c jit=off'`,
          ...verifyFullConninfo(hostOf(ctx, node).tls?.ca),
        ].join(' ');
        // pg_rewind finishes the crash recovery of a node that died by itself (single-user mode, no listener).
        const rewound = await journal.step(rewindStep, () => control.rewind(conninfo));
        if (rewound === undefined) throw new Error(`${rewindStep} was recorded done, yet decided again`);
        rewindCopiedMb = rewound.copiedMb;
        facts = { ...facts, rewound };
      } else if (next.kind === 'reclone') {
        method = 'reclone';
        recloneReason = next.reason;
        // Journaled: a resume after a kill here finds the directory moved aside and clones again.
        await journal.step(recloneStep, () => reclone(next.reason));
        done = true;
      } else {
        method = next.method;
        makeStandby(ctx, node, primary);
        const logFrom = control.logLength();
        await control.start();
        // pg_rewind and pg_basebackup leave pg_replslot empty; only a node left as it was still
        // carries the slots of its time as a primary.
        if (method === 'none needed') await dropSlotsOnStandby(ctx, node);
        try {
          await waitStreaming(ctx, node, primary, ctx.timeouts.streamingMs, logFrom);
          done = true;
        } catch (err) {
          if (!(err instanceof PgreplError && err.code === 'E_WAL_REMOVED')) throw err;
          facts = { ...facts, walRemoved: err.message };
        }
      }
    }
    await ctx.store.setFenced(name, false);
  } finally {
    await journal.finish();
  }
  await recordHistory(ctx, {
    op: 'rejoin',
    node: name,
    from: primary.name,
    primary: primary.name,
    lsn: null,
    durationMs: ctx.clock.now() - began,
    reason: `${method}${recloneReason ? `: ${recloneReason}` : ''}`,
  });
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

/**
 * What only the node has, listed before pg_rewind or a re-clone throws it away: diverged on the
 * primary's own timeline, its WAL from the fork; on an older one, its WAL past where that timeline
 * ended in the primary's history. null when it has nothing of its own (its history is a prefix of the
 * primary's) or it cannot be read.
 */
async function ownWalOf(control: NodeControl, check: DivergenceCheck): Promise<LostWal | null> {
  if (check.divergence.kind === 'follows') return null;
  if (check.divergence.kind === 'diverged') return check.ownWal;
  const branch = check.history.history.find((h) => h.timeline === check.control.timeline);
  if (!branch) return null;
  const own = await control.commitsAfter(branch.endedAt, check.control);
  return own && own.to !== own.from ? own : null;
}

/**
 * What the observation found of a stopped `name` checked against `primary`, when that says it
 * follows: it is not checked again (a connection and a pg_waldump, ~0.1 s of a rejoin), and has no
 * WAL of its own to list. Anything else is checked again once the node is surely stopped.
 */
function observedFollowing(obs: ClusterObservation, name: string, primary: string): Divergence | null {
  const me = obs.nodes.find((o) => o.node.name === name);
  return onlyPrimary(obs.nodes)?.node.name === primary &&
    me?.server === null &&
    me.divergence?.kind === 'follows'
    ? me.divergence
    : null;
}

/** Whether the node's directory, read on this machine, holds a cluster (a node elsewhere is not judged). */
function hasData(obs: ClusterObservation, name: string): boolean {
  const o = obs.nodes.find((n) => n.node.name === name);
  return o ? (localDir(o)?.initialized ?? true) : true;
}

/** Whether `name` streams from `primary` now, on the primary's timeline, and is not fenced. */

function streamsFrom(obs: ClusterObservation, name: string, primary: string): boolean {
  const me = obs.nodes.find((n) => n.node.name === name);
  const p = obs.nodes.find((n) => n.node.name === primary);
  if (!me?.server?.ok || !p?.server?.ok || me.fenced || !me.server.instance.inRecovery) return false;
  const sender = p.server.senders.find((s) => s.applicationName === name);
  return sender?.state === 'streaming' && me.server.instance.timeline === p.server.instance.timeline;
}
