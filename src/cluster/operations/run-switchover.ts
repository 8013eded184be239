import { PgreplError } from '../../errors.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { checkDivergence } from '../observe/check-divergence.js';
import { decideSwitchover } from '../decide/decide-switchover.js';
import type { SwitchoverDecision } from '../decide/decide-switchover.js';
import { beginJournal } from './journal.js';
import type { Journal } from './journal.js';
import { controlOf } from '../actions/control-of.js';
import { waitStreaming } from '../actions/node-actions.js';
import { nodeOf, sqlOn } from '../context/node-sql.js';
import { observeCluster } from '../observe/observe-cluster.js';
import { recordHistory } from './record-history.js';
import { roleOf, runningReplicas } from '../observe/observation.js';
import type { ClusterObservation } from '../observe/observation.js';
import {
  createSlotsFor,
  dropSlotsOnStandby,
  makeStandby,
  promote,
  repoint,
  waitReplayed,
} from '../actions/topology-actions.js';

export interface SwitchoverResult {
  oldPrimary: string;
  newPrimary: string;
  /** From the old primary's stop to the new primary's promotion: when no writes were possible. */
  writeGapMs: number;
  /** The old primary's shutdown checkpoint, replayed by the new primary before it was promoted. */
  shutdownCheckpoint: string;
  oldPrimaryRejoined: boolean;
  needRejoin: string[];
  ms: number;
}

/**
 * Planned switchover without losing a commit: stop the old primary cleanly (its shutdown
 * checkpoint streams to the replicas), wait until the target replayed that checkpoint, promote the
 * target, then turn the old primary into its replica (after checking that it did not diverge) and
 * re-point the others. Never two primaries: the old one is down before the new one is promoted.
 */
export async function runSwitchover(
  ctx: ClusterContext,
  to: string | undefined,
  resumed?: Journal,
): Promise<SwitchoverResult> {
  const began = ctx.clock.now();
  const obs = await observeCluster(ctx);
  const decision = resumed ? fromJournal(resumed, obs) : decideSwitchover(ctx.spec, obs, to);
  if (decision.kind === 'refuse')
    throw new PgreplError(decision.code, `${decision.reason}; nothing was changed`);
  ctx.events.emit({ event: 'decision', op: 'switchover', reason: decision.reason });
  const say = (node: string, message: string) => ctx.events.emit({ event: 'action', node, message });
  const old = nodeOf(ctx, decision.oldPrimary);
  const oldControl = controlOf(ctx, old);
  const target = nodeOf(ctx, decision.target);
  const followers = decision.followers.map((n) => nodeOf(ctx, n));
  const journal =
    resumed ??
    (await beginJournal(ctx, {
      op: 'switchover',
      resume: ['switchover', '--to', target.name],
      facts: { oldPrimary: old.name, target: target.name },
    }));

  // A checkpoint now makes the shutdown checkpoint, and so the write gap, short.
  await journal.step(`checkpoint ${old.name}`, () =>
    sqlOn(ctx, old, (s) => s.query('CHECKPOINT')).then(() => undefined),
  );
  let stoppedAt = ctx.clock.now();
  let writeGapMs = 0;
  // One connection to the target, opened before the old primary stops: no handshake in the write gap.
  const { control, check } = await sqlOn(ctx, target, async (s) => {
    await journal.step(`stop ${old.name}`, async () => {
      say(old.name, `stopping ${old.name} (fast shutdown: its last WAL streams to the replicas)`);
      stoppedAt = ctx.clock.now();
      await oldControl.stop('fast');
    });
    // Straight from pg_control: no pg_controldata to start inside the write gap (nor to need).
    const stopped = await oldControl.latestCheckpoint();
    const shutdownCheckpoint = stopped.checkpointLsn;
    await journal.step(
      `catch up ${target.name}`,
      async () => {
        try {
          await waitReplayed(ctx, s, target, {
            beyond: shutdownCheckpoint,
            timeoutMs: ctx.timeouts.catchUpMs,
          });
        } catch (err) {
          // Undo: nothing was promoted yet, so the old primary may simply come back.
          say(
            old.name,
            `${target.name} did not receive ${old.name}'s shutdown checkpoint; restarting ${old.name} as the primary`,
          );
          await oldControl.start();
          await journal.finish();
          throw new PgreplError(
            'E_SWITCHOVER_ABANDONED',
            `switchover abandoned, ${old.name} is the primary again: ${(err as Error).message}`,
            { cause: err },
          );
        }
      },
      { midway: true },
    );
    await journal.step(
      `promote ${target.name}`,
      async () => {
        say(target.name, `promoting ${target.name}`);
        await promote(ctx, target, s);
      },
      { midway: true },
    );
    writeGapMs = ctx.clock.now() - stoppedAt;
    await journal.step(`slots on ${target.name}`, () => createSlotsFor(ctx, target, s));
    // Verify, not assume, that the old primary ends where the new timeline begins: the same check
    // as every other place that turns a directory into a standby. A resumed run may find it
    // already restarted as a standby: then it was checked before.
    const check = oldControl.state().pid === null ? await checkDivergence(ctx, old, s) : null;
    return { control: stopped, check };
  });
  let oldPrimaryRejoined = false;
  await journal.step(`demote ${old.name}`, async () => {
    if (check !== null && check.divergence.kind !== 'follows') {
      say(
        old.name,
        `${old.name} stays fenced: ${check.divergence.reason}; \`pgrepl rejoin ${old.name}\` brings it back`,
      );
      await ctx.store.setFenced(old.name, true);
      return;
    }
    say(old.name, `restarting ${old.name} as a replica of ${target.name}`);
    makeStandby(ctx, old, target);
    await oldControl.start();
    await dropSlotsOnStandby(ctx, old);
    oldPrimaryRejoined = true;
  });
  const needRejoin: string[] = oldPrimaryRejoined ? [] : [old.name];
  await journal.step('re-point replicas', async () => {
    for (const f of followers) await repoint(ctx, f, target);
    const all = oldPrimaryRejoined ? [old, ...followers] : followers;
    await Promise.all(
      all.map((f) =>
        waitStreaming(ctx, f, target, ctx.timeouts.followMs).catch(() => needRejoin.push(f.name)),
      ),
    );
  });
  await journal.finish();
  await recordHistory(ctx, {
    op: 'switchover',
    node: target.name,
    from: old.name,
    primary: target.name,
    lsn: control.checkpointLsn,
    durationMs: ctx.clock.now() - began,
    reason: `${decision.reason}; writes were impossible for ${writeGapMs} ms`,
  });
  return {
    oldPrimary: old.name,
    newPrimary: target.name,
    writeGapMs,
    shutdownCheckpoint: control.checkpointLsn,
    oldPrimaryRejoined: oldPrimaryRejoined && !needRejoin.includes(old.name),
    needRejoin,
    ms: ctx.clock.now() - began,
  };
}

/** A resumed switchover keeps its two nodes; the other replicas are observed afresh. */
function fromJournal(j: Journal, obs: ClusterObservation): SwitchoverDecision {
  const oldPrimary = j.facts['oldPrimary'] ?? '';
  const target = j.facts['target'] ?? '';
  return {
    kind: 'switchover',
    oldPrimary,
    target,
    followers: runningReplicas(obs, target, oldPrimary),
    reason: `resuming the switchover ${oldPrimary} -> ${target}`,
  };
}

/** Undo of an interrupted switchover: possible only while the target has not been promoted. */
export async function abandonSwitchover(ctx: ClusterContext, j: Journal): Promise<void> {
  const old = nodeOf(ctx, j.facts['oldPrimary'] ?? '');
  const oldControl = controlOf(ctx, old);
  const target = nodeOf(ctx, j.facts['target'] ?? '');
  const obs = await observeCluster(ctx);
  const t = obs.nodes.find((o) => o.node.name === target.name);
  const promoted =
    j.hasDone(`promote ${target.name}`) ||
    (t !== undefined && roleOf(t) === 'primary') ||
    !controlOf(ctx, target).state().standbySignal;
  if (promoted) {
    throw new PgreplError(
      'E_NOT_RESUMABLE',
      `${target.name} was already promoted; the switchover cannot be undone, run \`pgrepl resume\` to finish it`,
    );
  }
  ctx.events.emit({ event: 'action', node: old.name, message: `starting ${old.name} again as the primary` });
  oldControl.clearStandbySignal();
  await oldControl.start();
  const followers = runningReplicas(obs, old.name).map((n) => nodeOf(ctx, n));
  await Promise.all(followers.map((f) => waitStreaming(ctx, f, old, ctx.timeouts.followMs)));
  await j.finish();
}
