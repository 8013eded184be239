import { applyPlan } from '../../cluster/operations/apply-plan.js';
import { parseCrashPoint } from '../../cluster/context/crash-point.js';
import { renderFacts } from '../../cluster/actions/node-actions.js';
import { prepareStateDir, rememberInstallation } from '../../cluster/context/cluster-context.js';
import type { ClusterContext } from '../../cluster/context/cluster-context.js';
import { observeCluster } from '../../cluster/observe/observe-cluster.js';
import { planUp } from '../../cluster/decide/plan-up.js';
import type { PlanOptions } from '../../cluster/decide/plan-up.js';
import { describeStep } from '../../cluster/decide/plan-step.js';
import type { Step, StepKind } from '../../cluster/decide/plan-step.js';
import type { Reporter } from '../../cluster/context/reporter.js';
import { PgreplError } from '../../errors.js';
import { assertPortFree } from '../../postgres/instance-control.js';
import { checkSettings } from '../../postgres/check-settings.js';
import { EMBEDDED_SOURCE, specText } from '../../spec/load-spec.js';
import { changing, commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';
import { consoleReporter } from '../console-reporter.js';

const STARTS_SERVER: ReadonlySet<StepKind> = new Set(['init-primary', 'start', 'clone']);

export interface UpOptions {
  dryRun?: boolean;
  json?: boolean;
}

/**
 * `up` (create: true) and `start` (create: false): observe, plan, print or apply, then verify that
 * every setting pgrepl wrote is in effect.
 */
export async function runUp(g: GlobalOptions, o: UpOptions, plan: PlanOptions): Promise<number> {
  const ctx = await commandContext(g);
  if (o.dryRun) return up(ctx, o, plan);
  return changing(ctx, plan.create ? 'up' : 'start', () => up(ctx, o, plan));
}

async function up(observedCtx: ClusterContext, o: UpOptions, plan: PlanOptions): Promise<number> {
  const began = Date.now();
  const { spec } = observedCtx;
  const say = (text: string) => process.stderr.write(`${text}\n`);
  if (spec.source === EMBEDDED_SOURCE) {
    say(
      `no pgrepl.yaml here: using the embedded default (${spec.nodes.length} nodes on ${spec.nodes[0]?.host} from port ${spec.nodes[0]?.port}, ` +
        `state under ${spec.stateDir}); \`pgrepl init\` writes it to a file you can edit`,
    );
  }
  await assertSettingsAccepted(observedCtx);
  const facts = renderFacts(observedCtx);
  const observed = await observeCluster(observedCtx);
  const decided = planUp(spec, observed, facts, plan);
  if (decided.refusal) {
    throw new PgreplError(decided.refusal.code, `${decided.refusal.reason}; nothing was changed`);
  }
  // Every port the plan will start a server on must be free before the first change is made.
  const toStart = new Set(decided.steps.filter((s) => STARTS_SERVER.has(s.kind)).map((s) => s.node));
  for (const n of observed.nodes) {
    if (toStart.has(n.node.name) && n.server === null)
      await assertPortFree(n.node.host, n.node.port, n.node.name);
  }
  for (const note of decided.notes) say(`note: ${note}`);

  if (o.dryRun) {
    if (o.json)
      process.stdout.write(
        `${JSON.stringify({ cluster: spec.cluster, dryRun: true, steps: decided.steps }, null, 2)}\n`,
      );
    else if (decided.steps.length === 0)
      process.stdout.write(`cluster ${spec.cluster} is up to date; nothing to do\n`);
    else
      process.stdout.write(
        decided.steps.map((s, i) => `${i + 1}. ${describeStep(s)}\n     because ${s.reason}`).join('\n') +
          '\n',
      );
    return 0;
  }

  // Known to match only when the primary runs and says so; a stopped one is checked by the role step.
  const roleHasPassword = observed.nodes.some(
    (n) =>
      n.node.name === decided.primary &&
      n.server?.ok === true &&
      n.server.replicationPasswordMatches === true,
  );
  const ctx = decided.steps.length > 0 ? prepareStateDir(observedCtx, { roleHasPassword }) : observedCtx;
  rememberInstallation(ctx);
  const done: (Step & { ms: number })[] = [];
  const reporter = consoleReporter();
  const recording: Reporter = {
    ...reporter,
    stepFinished: (s, ms) => (done.push({ ...s, ms }), reporter.stepFinished(s, ms)),
  };
  try {
    await applyPlan(ctx, decided, {
      reporter: recording,
      crashAt: parseCrashPoint(ctx.processEnv['PGREPL_CRASH_AT']),
    });
  } finally {
    reporter.close();
  }
  const after = await observeCluster(ctx);
  const unapplied = after.nodes.flatMap((n) =>
    n.server?.ok ? n.server.unappliedSettings.map((u) => `${n.node.name}: ${u.name} (${u.why})`) : [],
  );
  if (unapplied.length > 0) {
    throw new PgreplError(
      'E_CONFIG_NOT_APPLIED',
      `these settings from pgrepl's postgresql.conf are not in effect:\n  ${unapplied.join('\n  ')}\n` +
        'remove the overriding lines (ALTER SYSTEM RESET <name>) and run `pgrepl up` again',
    );
  }
  const ms = Date.now() - began;
  const replicas = spec.nodes.filter((n) => n.name !== decided.primary).map((n) => n.name);
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify({ cluster: spec.cluster, changed: done.length > 0, primary: decided.primary, replicas, steps: done, durationMs: ms }, null, 2)}\n`,
    );
  } else if (done.length === 0 && decided.notes.length === 0) {
    process.stdout.write(
      `cluster ${spec.cluster} is up to date: ${decided.primary} primary, ${replicas.length} replica(s); nothing changed\n`,
    );
  } else {
    process.stdout.write(
      `cluster ${spec.cluster} is up in ${(ms / 1000).toFixed(1)} s: ${decided.primary} primary` +
        `${replicas.length > 0 ? `, ${replicas.join(', ')} streaming` : ''}. See \`pgrepl status\`.\n`,
    );
  }
  return 0;
}

/**
 * Refuses, before anything is written, a spec whose settings the PostgreSQL binary in use rejects
 * (an unknown name, a bad type, a value out of range): written to every node, such a setting would
 * only fail at the next restart, in the middle of a switchover.
 */
async function assertSettingsAccepted(ctx: ClusterContext): Promise<void> {
  const bad = await checkSettings(ctx.env, ctx.spec.settings);
  if (bad.length === 0) return;
  const { specProblemsError } = await import('../../spec/parse-spec.js');
  throw specProblemsError(
    specText(ctx.spec),
    ctx.spec.source,
    bad.map((b) => ({
      path: ['settings', b.name],
      message: `PostgreSQL ${ctx.env.bins.version} rejects it: ${b.message}`,
    })),
  );
}
