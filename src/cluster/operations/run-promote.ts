import { PgreplError } from '../../errors.js';
import { lsnDiff } from '../../postgres/lsn.js';
import { acceptsConnections } from '../../postgres/instance-control.js';
import { readTimelineHistory } from '../../postgres/promotion.js';
import type { LostWal } from '../../postgres/run-rewind.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { decidePromote } from '../decide/decide-promote.js';
import type { PromoteDecision, PromoteRequest } from '../decide/decide-promote.js';
import { beginJournal } from './journal.js';
import type { Journal } from './journal.js';
import { controlOf } from '../actions/control-of.js';
import { waitStreaming } from '../actions/node-actions.js';
import { nodeOf, sqlOn } from '../context/node-sql.js';
import { observeCluster } from '../observe/observe-cluster.js';
import { runningReplicas } from '../observe/observation.js';
import type { ClusterObservation } from '../observe/observation.js';
import { recordHistory } from './record-history.js';
import { createSlotsFor, promote, repoint, waitReplayed } from '../actions/topology-actions.js';

export interface PromoteResult {
  newPrimary: string;
  oldPrimary: string | null;
  reason: string;
  /** The new primary's replayed position when it was promoted. */
  promotedAt: string;
  /** Bytes the old primary had written that the new one never received (when its WAL was readable). */
  behindBytes: number | null;
  /** That WAL, with its commits: what the promotion left behind on the old primary. */
  lostOnOldPrimary: LostWal | null;
  followers: string[];
  /** Replicas that could not follow the new primary and need `pgrepl rejoin`. */
  needRejoin: string[];
  /** The replicas that were considered, best first, each with why it is not healthy (null: healthy). */
  candidates: {
    name: string;
    positionLsn: string | null;
    replayLsn: string | null;
    problem: string | null;
  }[];
  ms: number;
}

/**
 * Unplanned failover: fence the old primary if it still runs (only with --force), mark it fenced,
 * let the candidate replay all it received while every slot is created on it, promote it, re-point
 * the others.
 * Each step is journaled; a crash between steps is resumed by running the same command again.
 */
export async function runPromote(
  ctx: ClusterContext,
  req: PromoteRequest & { oldPrimaryIsDown: boolean },
  resumed?: Journal,
): Promise<PromoteResult> {
  const began = ctx.clock.now();
  const obs = await observeCluster(ctx);
  const decision = resumed ? fromJournal(resumed, obs) : decidePromote(ctx.spec, obs, req);
  if (decision.kind === 'refuse') {
    throw new PgreplError(decision.code, `${decision.reason}; nothing was changed`);
  }
  ctx.events.emit({ event: 'decision', op: 'promote', reason: decision.reason });
  const target = nodeOf(ctx, decision.target);
  const say = (node: string, message: string) => ctx.events.emit({ event: 'action', node, message });
  const old = decision.oldPrimary === null ? undefined : nodeOf(ctx, decision.oldPrimary);
  const journal =
    resumed ??
    (await beginJournal(ctx, {
      op: 'promote',
      resume: ['promote', target.name, ...(req.force ? ['--force'] : [])],
      facts: { target: target.name, oldPrimary: old?.name ?? '' },
    }));

  if (old) {
    await journal.step(`fence ${old.name}`, async () => {
      if (decision.fence) {
        say(old.name, `stopping ${old.name} so that it cannot accept writes`);
        try {
          const how = await controlOf(ctx, old).fence();
          if (how === 'killed')
            say(
              old.name,
              `${old.name} did not stop in ${ctx.timeouts.fenceStopMs / 1000} s; killed it (its whole process group)`,
            );
          if (how === 'not running') say(old.name, `no server runs in ${old.dataDir}`);
        } catch (err) {
          if (!req.oldPrimaryIsDown) {
            throw new PgreplError(
              'E_FENCE_FAILED',
              `could not stop ${old.name} (${(err as Error).message}); if you are sure it is down for good, ` +
                'add --i-know-the-old-primary-is-down',
              { cause: err },
            );
          }
        }
        // It answered a moment ago. If its address still does (a stop that failed and was waved
        // through with --i-know-the-old-primary-is-down, or a server started since), promoting
        // would make two primaries, whatever the user believes.
        if (await acceptsConnections(old.host, old.port)) {
          throw new PgreplError(
            'E_FENCE_FAILED',
            `${old.name}'s address ${old.host}:${old.port} still accepts connections after pgrepl tried to stop the server in ${old.dataDir}; ` +
              'stop it yourself, then promote again. Nothing was promoted',
          );
        }
      }
      // Fenced before the promotion: from here on, start/up never run it as a primary again.
      await ctx.store.setFenced(old.name, true);
    });
  }

  // One connection to the candidate for all that comes before its first write, and for reading
  // where its new timeline begins: exactly where its replay ended.
  const promotedAt = await sqlOn(ctx, target, async (s) => {
    // The slots are made on the candidate while it still replays: a physical slot made on a standby
    // reserves WAL from its last restartpoint, which is before the old primary's last checkpoint
    // preceding the divergence. So the new primary keeps every WAL file a later `rejoin` of the old
    // one replays from (made after promotion, they would reserve only from the promotion on).
    // Once the old primary is fenced, the cluster has no primary until the promotion: no stop here.
    await journal.step(
      `catch up ${target.name}, slots on it`,
      async () => {
        await createSlotsFor(ctx, target, s);
        await waitReplayed(ctx, s, target, { settleMs: 200, timeoutMs: ctx.timeouts.replayMs });
      },
      { midway: old !== undefined },
    );
    await journal.step(
      `promote ${target.name}`,
      async () => {
        say(target.name, `promoting ${target.name}`);
        await promote(ctx, target, s);
      },
      { midway: old !== undefined },
    );
    return (await readTimelineHistory(s).catch(() => undefined))?.history.at(-1)?.endedAt ?? '';
  });
  // Until its first checkpoint on the new timeline, its control file points into the old one, whose
  // last segment promotion renamed to .partial: dying before then, it could not be rewound
  // (pg_rewind looks for that segment) and would need a re-clone. The timed checkpoint can be
  // minutes away; this one runs while the replicas are re-pointed.
  const checkpointed = sqlOn(ctx, target, (q) => q.query('CHECKPOINT')).then(
    () => null,
    (err: unknown) => err as Error,
  );
  const needRejoin: string[] = [];
  const followers = decision.followers.map((n) => nodeOf(ctx, n));
  await journal.step('re-point replicas', async () => {
    for (const f of followers) await repoint(ctx, f, target);
    await Promise.all(
      followers.map((f) =>
        waitStreaming(ctx, f, target, ctx.timeouts.followMs).catch(() => {
          needRejoin.push(f.name);
        }),
      ),
    );
  });
  await journal.finish();
  const notCheckpointed = await checkpointed;
  if (notCheckpointed)
    ctx.events.emit({
      event: 'note',
      message: `the checkpoint on ${target.name} after its promotion failed (${notCheckpointed.message}); its next timed one makes it rewindable again`,
    });
  // Off the promotion's path: the old primary's own WAL says exactly what it had beyond that point.
  const lost = old && promotedAt !== '' ? await lostOn(ctx, old, promotedAt) : null;
  const behind = lost?.to ? Math.max(0, lsnDiff(lost.to, promotedAt) ?? 0) : null;
  await recordHistory(ctx, {
    op: 'promote',
    node: target.name,
    from: old?.name ?? null,
    primary: target.name,
    lsn: promotedAt || null,
    durationMs: ctx.clock.now() - began,
    reason: decision.reason,
  });
  return {
    newPrimary: target.name,
    oldPrimary: old?.name ?? null,
    reason: decision.reason,
    promotedAt,
    behindBytes: behind,
    lostOnOldPrimary: lost,
    followers: followers.map((f) => f.name).filter((n) => !needRejoin.includes(n)),
    needRejoin,
    candidates: decision.candidates.map(({ name, positionLsn, replayLsn, problem }) => ({
      name,
      positionLsn,
      replayLsn,
      problem,
    })),
    ms: ctx.clock.now() - began,
  };
}

/**
 * The WAL the stopped old primary has past `from`, with its commits (pg_waldump on its pg_wal, on
 * the timeline its control file names); null while it still runs or when its WAL cannot be read.
 */
async function lostOn(ctx: ClusterContext, old: NodeSpec, from: string): Promise<LostWal | null> {
  const control = controlOf(ctx, old);
  if (control.state().pid !== null) return null;
  return control.commitsAfter(from);
}

/** A resumed promote keeps its target and old primary; what still runs is observed afresh. */
function fromJournal(j: Journal, obs: ClusterObservation): PromoteDecision {
  const target = j.facts['target'] ?? '';
  const oldPrimary = j.facts['oldPrimary'] || null;
  const old = obs.nodes.find((o) => o.node.name === oldPrimary);
  return {
    kind: 'promote',
    target,
    oldPrimary,
    fence: old !== undefined && old.server !== null,
    followers: runningReplicas(obs, target, oldPrimary),
    candidates: [],
    reason: `resuming the promotion of ${target}`,
  };
}
