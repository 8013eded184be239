import { PgreplError } from '../../errors.js';
import { hasTool } from '../../postgres/find-binaries.js';
import type { SqlSession } from '../../postgres/sql-client.js';
import { upstreamConninfo } from '../../postgres/render-postgresql-conf.js';
import { ensurePhysicalSlot, ensureReplicationRole } from '../../postgres/replication-admin.js';
import { hostOf, writeReplicationPassfile } from '../context/cluster-context.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { checkDivergence } from '../observe/check-divergence.js';
import { divergedNotStarted } from '../decide/plan-up.js';
import { crashIfAt } from '../context/crash-point.js';
import type { CrashPoint } from '../context/crash-point.js';
import { describeStep, PARALLEL_KINDS, stepName } from '../decide/plan-step.js';
import { stopIfInterrupted } from '../context/safe-stop.js';
import type { Plan, Step, StepKind } from '../decide/plan-step.js';
import { controlOf } from '../actions/control-of.js';
import { issueClusterCa, issueNodeCert } from '../actions/node-certs.js';
import { runLogicalStep } from '../actions/logical-actions.js';
import { createStanza, standbyRestore } from '../actions/backup-actions.js';
import { configFor, waitStreaming } from '../actions/node-actions.js';
import { nodeOf, sqlOn } from '../context/node-sql.js';
import { runSwitchover } from './run-switchover.js';

export interface ApplyOptions {
  /** How long a replica may take to reach `streaming`. */
  readonly streamingTimeoutMs?: number;
  /** Failpoint for crash tests (PGREPL_CRASH_AT, a step named as stepName() does). */
  readonly crashAt?: CrashPoint | undefined;
}

/** Performs one step; may say what it found, e.g. that the slot it was to make was there already. */
type Handler<K extends StepKind> = (
  ctx: ClusterContext,
  step: Extract<Step, { kind: K }>,
  o: ApplyOptions,
) => Promise<string | void>;

/**
 * How each step is performed. Every kind the planner can emit has exactly one handler (a test
 * checks the table against the Step union), and each handler is idempotent, so re-running a plan
 * after a crash is safe.
 */
const ROLE_OUTCOME = {
  created: 'created',
  altered: "given the spec's password",
  unchanged: 'it was there already, with the spec’s password',
} as const;

/**
 * Whether a clone copies its upstream's files under a low-level backup instead of running
 * pg_basebackup: the installation lacks it (a bare server package, PostgreSQL 15 or later for
 * pg_backup_start) and the upstream's data directory is on this machine.
 */
export function copiesFiles(ctx: ClusterContext, step: Extract<Step, { kind: 'clone' }>): boolean {
  return (
    step.source !== 'repository' &&
    !hasTool(ctx.env.bins, 'pg_basebackup') &&
    ctx.env.bins.major >= 15 &&
    ctx.localNodes.has(step.upstream)
  );
}

export const STEP_HANDLERS: { readonly [K in StepKind]: Handler<K> } = {
  'issue-ca': async (ctx) => issueClusterCa(ctx),
  // PostgreSQL reads its certificate again at a reload: a running server serves the new one at once.
  'issue-cert': async (ctx, step) => {
    const node = nodeOf(ctx, step.node);
    await issueNodeCert(ctx, node);
    await controlOf(ctx, node).reload();
  },
  'init-primary': async (ctx, step) => {
    const node = nodeOf(ctx, step.node);
    await controlOf(ctx, node).initPrimary(configFor(ctx, node, undefined));
  },
  // Rewrite the files; a running server reloads. A setting that needs a restart has a restart step
  // of its own in the plan (replicas before the primary), shown by --dry-run.
  'write-config': async (ctx, step) => {
    const node = nodeOf(ctx, step.node);
    const upstream = step.upstream === null ? undefined : nodeOf(ctx, step.upstream);
    const control = controlOf(ctx, node);
    control.writeConfig(configFor(ctx, node, upstream));
    await control.reload();
  },
  // A replica starts only if its history is a prefix of its upstream's: the observation checks
  // that while a primary runs, and this covers a primary that was itself started by this plan.
  start: async (ctx, step) => {
    const node = nodeOf(ctx, step.node);
    const control = controlOf(ctx, node);
    const dir = control.state();
    if (step.upstream !== null && dir.pid === null && dir.standbySignal && !control.hasBackupLabel()) {
      const upstream = nodeOf(ctx, step.upstream);
      const { divergence } = await sqlOn(ctx, upstream, (s) => checkDivergence(ctx, node, s));
      if (divergence.kind === 'diverged')
        throw new PgreplError(
          'E_DIVERGED',
          divergedNotStarted(node.name, upstream.name, divergence.reason, 'was not started'),
        );
    }
    await control.start();
  },
  restart: async (ctx, step) => controlOf(ctx, nodeOf(ctx, step.node)).restart(),
  // The old primary was written its new configuration: it takes it as it restarts as a replica.
  switchover: async (ctx, step) => {
    const r = await runSwitchover(ctx, step.to);
    return `writes waited ${Math.round(r.writeGapMs)} ms; ${r.oldPrimary} follows ${r.newPrimary}`;
  },
  'ensure-replication-role': async (ctx, step) => {
    const password = ctx.replicationPassword;
    if (password === undefined)
      throw new PgreplError('E_SECRET', 'no replication password; run `pgrepl up` to generate one');
    const done = await sqlOn(ctx, nodeOf(ctx, step.node), (s) =>
      ensureReplicationRole(s, ctx.spec.replication.user, password),
    );
    // Only now that the role has it: replicas that reconnect from here on log in with it.
    writeReplicationPassfile(ctx);
    return ROLE_OUTCOME[done];
  },
  'create-slot': async (ctx, step) => {
    const done = await sqlOn(ctx, nodeOf(ctx, step.node), (s) => ensurePhysicalSlot(s, step.slot));
    return done === 'created' ? 'created' : 'it was there already';
  },
  // Starting the copy is the plan's next step.
  clone: async (ctx, step) => {
    const node = nodeOf(ctx, step.node);
    const upstream = nodeOf(ctx, step.upstream);
    await controlOf(ctx, node).clone({
      conninfo: upstreamConninfo(
        {
          host: upstream.host,
          port: upstream.port,
          user: ctx.spec.replication.user,
          passfile: hostOf(ctx, node).replicationPassfile,
          slot: node.name,
          sslRootCert: hostOf(ctx, node).tls?.ca,
        },
        node.name,
      ),
      config: configFor(ctx, node, upstream),
      onProgress: (progress) => ctx.events.emit({ event: 'clone-progress', node: node.name, progress }),
      ...(step.source === 'repository' ? { fromRepository: await standbyRestore(ctx, node) } : {}),
      ...(copiesFiles(ctx, step)
        ? {
            fromDataDir: {
              dir: upstream.dataDir,
              onUpstream: <T>(fn: (s: SqlSession) => Promise<T>) => sqlOn(ctx, upstream, fn),
            },
          }
        : {}),
    });
  },
  'wait-streaming': async (ctx, step, o) =>
    waitStreaming(ctx, nodeOf(ctx, step.node), nodeOf(ctx, step.upstream), o.streamingTimeoutMs),
  'create-stanza': async (ctx, step) => createStanza(ctx, nodeOf(ctx, step.node)),
  logical: async (ctx, step) => runLogicalStep(ctx, nodeOf(ctx, step.node), step),
};

/** Runs the plan's steps in order; consecutive clone or wait steps run in parallel. */
export async function applyPlan(ctx: ClusterContext, plan: Plan, o: ApplyOptions): Promise<void> {
  const steps = [...plan.steps];
  while (steps.length > 0) {
    const first = steps[0] as Step;
    let n = 1;
    if (PARALLEL_KINDS.has(first.kind)) while (n < steps.length && steps[n]?.kind === first.kind) n++;
    stopIfInterrupted(ctx.interrupt, `"${describeStep(first)}"`, 'run the same command again to go on');
    await Promise.all(steps.splice(0, n).map((s) => runStep(ctx, s, o)));
  }
}

async function runStep(ctx: ClusterContext, step: Step, o: ApplyOptions): Promise<void> {
  const began = ctx.clock.now();
  const name = stepName(step);
  ctx.events.emit({ event: 'step-started', step });
  crashIfAt(o.crashAt, 'before', name);
  const handler = STEP_HANDLERS[step.kind] as Handler<StepKind>;
  const outcome = await handler(ctx, step as never, o);
  crashIfAt(o.crashAt, 'during', name);
  ctx.events.emit({
    event: 'step-finished',
    step,
    ms: ctx.clock.now() - began,
    ...(typeof outcome === 'string' ? { outcome } : {}),
  });
  crashIfAt(o.crashAt, 'after', name);
}
