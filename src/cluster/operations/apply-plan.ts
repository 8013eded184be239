import { existsSync, mkdirSync, renameSync, rmSync, chownSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PgreplError } from '../../errors.js';
import { initdb, readDataDir, reloadInstance } from '../../postgres/instance-control.js';
import { readPendingRestart } from '../../postgres/instance-queries.js';
import { ensureOwnedDir } from '../../postgres/owned-paths.js';
import { upstreamConninfo } from '../../postgres/render-postgresql-conf.js';
import { ensurePhysicalSlot, ensureReplicationRole } from '../../postgres/replication-admin.js';
import { runBasebackup } from '../../postgres/run-basebackup.js';
import type { NodeSpec } from '../../spec/cluster-spec.js';
import { requireSuperuserPassword, writeReplicationPassfile } from '../context/cluster-context.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { checkDivergence } from '../observe/check-divergence.js';
import { divergedNotStarted } from '../decide/decide-divergence.js';
import { crashIfAt } from '../context/crash-point.js';
import type { CrashPoint } from '../context/crash-point.js';
import { readState, recordCreatedDir } from '../store/cluster-state.js';
import { writeNodeFiles } from '../actions/node-files.js';
import { cloneTempDir } from '../observe/observation.js';
import { describeStep, PARALLEL_KINDS, stepName } from '../decide/plan-step.js';
import { stopIfInterrupted } from '../context/safe-stop.js';
import type { Plan, Step, StepKind } from '../decide/plan-step.js';
import { configFor, nodeOf, restartNode, sqlOn, startNode, waitStreaming } from '../actions/node-actions.js';
import type { Reporter } from '../context/reporter.js';

export interface ApplyOptions {
  readonly reporter: Reporter;
  /** How long a replica may take to reach `streaming`. */
  readonly streamingTimeoutMs?: number;
  /** Failpoint for crash tests (PGREPL_CRASH_AT, a step named as stepName() does). */
  readonly crashAt?: CrashPoint | undefined;
}

type Handler<K extends StepKind> = (
  ctx: ClusterContext,
  step: Extract<Step, { kind: K }>,
  o: ApplyOptions,
) => Promise<void>;

/**
 * How each step is performed. Every kind the planner can emit has exactly one handler (a test
 * checks the table against the Step union), and each handler is idempotent, so re-running a plan
 * after a crash is safe.
 */
export const STEP_HANDLERS: { readonly [K in StepKind]: Handler<K> } = {
  // initdb into a directory pgrepl records as its own before creating it, then configure and start.
  'init-primary': async (ctx, step) => {
    const node = nodeOf(ctx, step.node);
    prepareDataDirParent(ctx, node);
    recordCreatedDir(ctx.spec.stateDir, ctx.spec.cluster, node.dataDir, ctx.env.runAs);
    ensureOwnedDir(node.dataDir, 0o700, ctx.env.runAs);
    await initdb(ctx.env, {
      dataDir: node.dataDir,
      superuser: ctx.spec.superuser.name,
      password: requireSuperuserPassword(ctx),
      secretsDir: ctx.paths.secretsDir,
    });
    writeNodeFiles(node.dataDir, configFor(ctx, node, undefined), ctx.env.runAs);
    await startNode(ctx, node);
  },
  // Rewrite the files; a running server reloads, and restarts only if a changed setting requires it.
  'write-config': async (ctx, step) => {
    const node = nodeOf(ctx, step.node);
    const upstream = step.upstream === null ? undefined : nodeOf(ctx, step.upstream);
    writeNodeFiles(node.dataDir, configFor(ctx, node, upstream), ctx.env.runAs);
    if (readDataDir(node.dataDir).pid === null) return;
    await reloadInstance(ctx.env, node.dataDir);
    const pending = await sqlOn(ctx, node, (s) => readPendingRestart(s));
    if (pending.length > 0) await restartNode(ctx, node);
  },
  // A replica starts only if its history is a prefix of its upstream's: the observation checks
  // that while a primary runs, and this covers a primary that was itself started by this plan.
  start: async (ctx, step) => {
    const node = nodeOf(ctx, step.node);
    const dir = readDataDir(node.dataDir);
    if (
      step.upstream !== null &&
      dir.pid === null &&
      dir.standbySignal &&
      !existsSync(join(node.dataDir, 'backup_label'))
    ) {
      const upstream = nodeOf(ctx, step.upstream);
      const { divergence } = await sqlOn(ctx, upstream, (s) => checkDivergence(ctx, node, s));
      if (divergence.kind === 'diverged')
        throw new PgreplError(
          'E_DIVERGED',
          divergedNotStarted(node.name, upstream.name, divergence.reason, 'was not started'),
        );
    }
    await startNode(ctx, node);
  },
  restart: async (ctx, step) => restartNode(ctx, nodeOf(ctx, step.node)),
  'ensure-replication-role': async (ctx, step) => {
    const password = ctx.replicationPassword;
    if (password === undefined)
      throw new PgreplError('E_SECRET', 'no replication password; run `pgrepl up` to generate one');
    await sqlOn(ctx, nodeOf(ctx, step.node), (s) =>
      ensureReplicationRole(s, ctx.spec.replication.user, password),
    );
    // Only now that the role has it: replicas that reconnect from here on log in with it.
    writeReplicationPassfile(ctx);
  },
  'create-slot': async (ctx, step) => {
    await sqlOn(ctx, nodeOf(ctx, step.node), (s) => ensurePhysicalSlot(s, step.slot));
  },
  // Clone into a sibling temp dir and rename it into place only when complete, so an interrupted
  // clone never leaves a data directory that looks valid. Starting it is the plan's next step.
  clone: async (ctx, step, o) => {
    const node = nodeOf(ctx, step.node);
    const upstream = nodeOf(ctx, step.upstream);
    const tmp = cloneTempDir(node.dataDir);
    const created = new Set(readState(ctx.spec.stateDir, ctx.spec.cluster).createdDirs);
    if (existsSync(tmp)) {
      if (!created.has(tmp)) {
        throw new PgreplError(
          'E_DATA_DIR_FOREIGN',
          `${tmp} exists but pgrepl did not create it; remove it yourself if it is not needed`,
        );
      }
      rmSync(tmp, { recursive: true, force: true });
    }
    prepareDataDirParent(ctx, node);
    recordCreatedDir(ctx.spec.stateDir, ctx.spec.cluster, tmp, ctx.env.runAs);
    ensureOwnedDir(tmp, 0o700, ctx.env.runAs);
    try {
      await runBasebackup(ctx.env, {
        targetDir: tmp,
        slot: node.name,
        conninfo: upstreamConninfo(
          {
            host: upstream.host,
            port: upstream.port,
            user: ctx.spec.replication.user,
            passfile: ctx.paths.replicationPassfile,
            slot: node.name,
          },
          node.name,
        ),
        onProgress: (p) => o.reporter.cloneProgress(node.name, p),
      });
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
    writeNodeFiles(tmp, configFor(ctx, node, upstream), ctx.env.runAs);
    recordCreatedDir(ctx.spec.stateDir, ctx.spec.cluster, node.dataDir, ctx.env.runAs);
    renameSync(tmp, node.dataDir);
  },
  'wait-streaming': async (ctx, step, o) =>
    waitStreaming(ctx, nodeOf(ctx, step.node), nodeOf(ctx, step.upstream), o.streamingTimeoutMs),
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
  const began = Date.now();
  const name = stepName(step);
  o.reporter.stepStarted(step);
  crashIfAt(o.crashAt, 'before', name);
  const handler = STEP_HANDLERS[step.kind] as Handler<StepKind>;
  await handler(ctx, step as never, o);
  crashIfAt(o.crashAt, 'during', name);
  o.reporter.stepFinished(step, Date.now() - began);
  crashIfAt(o.crashAt, 'after', name);
}

/** Creates the data directory's parent when missing (owned by the run-as user); never changes an existing one. */
function prepareDataDirParent(ctx: ClusterContext, node: NodeSpec): void {
  const parent = dirname(node.dataDir);
  if (existsSync(parent)) return;
  const firstCreated = mkdirSync(parent, { recursive: true, mode: 0o755 });
  if (!ctx.env.runAs || firstCreated === undefined) return;
  for (let dir = parent; dir.length >= firstCreated.length; dir = dirname(dir))
    chownSync(dir, ctx.env.runAs.uid, ctx.env.runAs.gid);
}
