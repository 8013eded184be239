import { PgreplError } from '../../errors.js';
import { checkSettings } from '../../postgres/check-settings.js';
import { assertPortFree } from '../../postgres/instance-control.js';
import { specText } from '../../cluster-spec/load-spec.js';
import { renderFacts } from '../actions/node-actions.js';
import { prepareStateDir, rememberInstallation } from '../context/cluster-context.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { parseCrashPoint } from '../context/crash-point.js';
import type { EventSink } from '../context/events.js';
import { planUp } from '../decide/plan-up.js';
import { planCerts } from '../decide/plan-certs.js';
import { readCertsOf } from '../actions/node-certs.js';
import type { PlanOptions } from '../decide/plan-up.js';
import type { Plan, Step, StepKind } from '../decide/plan-step.js';
import { observeCluster } from '../observe/observe-cluster.js';
import { onlyPrimary } from '../observe/observation.js';
import type { ClusterObservation } from '../observe/observation.js';
import { applyPlan, copiesFiles } from './apply-plan.js';
import { NO_LOGICAL, planLogical } from './plan-logical.js';
import { nodeOf } from '../context/node-sql.js';
import { toolPath } from '../../postgres/find-binaries.js';
import { checkRepository, clusterSystemId, readStanza, writeBackupFiles } from '../actions/backup-actions.js';
import { cloneSources, decideStanza, stanzaSteps } from '../decide/decide-stanza.js';

const STARTS_SERVER: ReadonlySet<StepKind> = new Set(['init-primary', 'start', 'clone']);

export interface UpPlan {
  readonly observed: ClusterObservation;
  readonly plan: Plan & { refusal: null };
}

export interface UpResult {
  readonly changed: boolean;
  readonly primary: string | null;
  /** The replicas that stream once the plan is done (seen, not assumed). */
  readonly replicas: string[];
  /** The other nodes, with why they do not stream (a fenced or diverged node the plan left stopped). */
  readonly leftOut: { readonly node: string; readonly why: string }[];
  /** The steps performed, with how long each took. */
  readonly steps: (Step & { ms: number })[];
  readonly notes: readonly string[];
  readonly durationMs: number;
}

/**
 * What `up` (create: true) and `start` (create: false) would do: the spec's settings checked against
 * the PostgreSQL binary, the cluster observed, the plan decided, and every port the plan starts a
 * server on checked free. Changes nothing; throws the plan's refusal.
 */
export async function planCluster(ctx: ClusterContext, o: PlanOptions): Promise<UpPlan> {
  await assertSettingsAccepted(ctx);
  const observed = await observeCluster(ctx);
  const planned = planUp(ctx.spec, observed, renderFacts(ctx), o);
  if (planned.refusal)
    throw new PgreplError(planned.refusal.code, `${planned.refusal.reason}; nothing was changed`);
  // Certificates first: a server started or reloaded by the plan reads them.
  const backup = await planBackup(ctx, planned.primary, planned.steps, o);
  const running = observed.nodes.find((n) => n.node.name === planned.primary && n.server?.ok === true);
  // Last: on the primary once it runs with the plan's configuration (wal_level logical among it).
  const logical =
    o.create && o.only === undefined
      ? await planLogical(ctx, running ? nodeOf(ctx, running.node.name) : null)
      : NO_LOGICAL;
  // After a switchover in the plan, what is done on the primary is done on the new one.
  const moved = planned.steps.find((s) => s.kind === 'switchover');
  const onPrimary = (s: Step): Step =>
    moved && (s.kind === 'logical' || s.kind === 'create-stanza') && s.node === moved.node
      ? { ...s, node: moved.to }
      : s;
  const plan = {
    ...planned,
    notes: [...planned.notes, ...backup.notes, ...logical.notes],
    steps: [
      ...planCerts(ctx.spec, readCertsOf(ctx, [...ctx.localNodes]), ctx.localNodes, ctx.clock.wallNow()),
      ...backup.steps.map(onPrimary),
      ...logical.steps.map(onPrimary),
    ],
  };
  // A bare server package clones only by copying files on this machine: said before the primary is
  // made, not after.
  if (plan.steps.some((s) => s.kind === 'clone' && s.source !== 'repository' && !copiesFiles(ctx, s)))
    toolPath(ctx.env.bins, 'pg_basebackup');
  for (const message of plan.notes) ctx.events.emit({ event: 'note', message: `note: ${message}` });
  const toStart = new Set(plan.steps.filter((s) => STARTS_SERVER.has(s.kind)).map((s) => s.node));
  for (const n of observed.nodes) {
    if (toStart.has(n.node.name) && n.server === null)
      await assertPortFree(n.node.host, n.node.port, n.node.name);
  }
  return { observed, plan: { ...plan, refusal: null } };
}

/**
 * With `backup:`, the plan's steps with the stanza step `up` needs last (once the primary runs with
 * archiving on), and clones from the repository if the spec says so; refuses a repository it must
 * not use before anything is changed.
 */
async function planBackup(
  ctx: ClusterContext,
  primary: string | null,
  steps: readonly Step[],
  o: PlanOptions,
): Promise<{ steps: Step[]; notes: string[] }> {
  const backup = ctx.spec.backup;
  if (!backup) return { steps: [...steps], notes: [] };
  await checkRepository(ctx);
  const info = await readStanza(ctx);
  const decided = decideStanza(ctx.spec.cluster, info, clusterSystemId(ctx));
  if (decided.kind === 'refuse')
    throw new PgreplError(decided.code, `${decided.reason}; nothing was changed`);
  const cloned = cloneSources(
    steps,
    backup.clone,
    info.backups.some((b) => !b.error),
  );
  return { steps: [...cloned.steps, ...stanzaSteps(decided, primary, o)], notes: cloned.notes };
}

/**
 * Performs a plan of planCluster, then verifies that every setting pgrepl wrote is in effect.
 * Run exclusively.
 */
export async function applyUp(ctx: ClusterContext, up: UpPlan): Promise<UpResult> {
  const began = ctx.clock.now();
  const { plan, observed } = up;
  // Known to match only when the primary runs and says so; a stopped one is checked by the role step.
  const roleHasPassword = observed.nodes.some(
    (n) =>
      n.node.name === plan.primary && n.server?.ok === true && n.server.replicationPasswordMatches === true,
  );
  const steps: (Step & { ms: number })[] = [];
  const recording: EventSink = {
    emit: (e) => {
      if (e.event === 'step-finished') steps.push({ ...e.step, ms: e.ms });
      ctx.events.emit(e);
    },
  };
  const prepared = {
    ...(plan.steps.length > 0 ? prepareStateDir(ctx, { roleHasPassword }) : ctx),
    events: recording,
  };
  rememberInstallation(prepared);
  writeBackupFiles(prepared);
  await applyPlan(prepared, plan, { crashAt: parseCrashPoint(prepared.processEnv['PGREPL_CRASH_AT']) });
  const after = await observeCluster(prepared);
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
  // A switchover in the plan moved the primary role.
  const primary = plan.steps.find((s) => s.kind === 'switchover')?.to ?? plan.primary;
  const primaryAfter = after.nodes.find((n) => n.node.name === primary)?.server;
  const streaming = primaryAfter?.ok
    ? primaryAfter.senders.filter((s) => s.state === 'streaming').map((s) => s.applicationName)
    : [];
  return {
    changed: steps.length > 0,
    primary,
    replicas: streaming,
    leftOut: ctx.spec.nodes
      .filter((n) => n.name !== primary && !streaming.includes(n.name))
      .map((n) => ({
        node: n.name,
        why: plan.notes.find((note) => note.startsWith(`${n.name} `)) ?? `${n.name} does not stream`,
      })),
    steps,
    notes: plan.notes,
    durationMs: ctx.clock.now() - began,
  };
}

/**
 * Whether the plan creates the cluster (no node holds data yet): with agents, they form it
 * themselves (`up --ha` then only prepares what they need and starts them).
 */
export const createsCluster = (up: UpPlan): boolean => up.plan.steps.some((s) => s.kind === 'init-primary');

/**
 * What agents on this machine need to form a new cluster, and nothing more: the state directory,
 * the passwords, and the certificates (tls: auto) of the plan. Run exclusively. Returns the
 * context with the passwords, to watch the agents form it with.
 */
export async function prepareForAgents(ctx: ClusterContext, up: UpPlan): Promise<ClusterContext> {
  const prepared = prepareStateDir(ctx, { roleHasPassword: false });
  rememberInstallation(prepared);
  writeBackupFiles(prepared);
  const certs = up.plan.steps.filter((s) => s.kind === 'issue-ca' || s.kind === 'issue-cert');
  await applyPlan(prepared, { ...up.plan, steps: certs }, {});
  return prepared;
}

/**
 * Waits until the agents have formed the cluster: one primary, every other node of the spec
 * streaming from it. Says so as each node gets there; E_TIMEOUT after `timeoutMs`, saying who
 * did not (`logs`: where to look).
 */
export async function waitFormed(
  ctx: ClusterContext,
  o: { readonly timeoutMs: number; readonly logs: string },
): Promise<UpResult> {
  const began = ctx.clock.now();
  const said = new Set<string>();
  let last: { primary: string | null; streaming: string[] } = { primary: null, streaming: [] };
  while (ctx.clock.now() - began < o.timeoutMs) {
    const observed = await observeCluster(ctx);
    const primary = onlyPrimary(observed.nodes);
    // Streaming as the replica itself says: the primary also lists a clone's WAL stream under its name.
    const streaming =
      primary === null
        ? []
        : observed.nodes
            .filter((n) => n.server?.ok === true && n.server.instance.inRecovery)
            .filter((n) => {
              const r = n.server?.ok === true ? n.server.walReceiver : null;
              return (
                r?.status === 'streaming' &&
                r.senderHost === primary.node.host &&
                r.senderPort === primary.node.port
              );
            })
            .map((n) => n.node.name);
    last = { primary: primary?.node.name ?? null, streaming };
    for (const done of [
      ...(last.primary ? [`${last.primary} primary`] : []),
      ...streaming.map((n) => `${n} streaming`),
    ])
      if (!said.has(done)) {
        said.add(done);
        ctx.events.emit({
          event: 'note',
          message: `${done} (${((ctx.clock.now() - began) / 1000).toFixed(1)} s)`,
        });
      }
    const others = ctx.spec.nodes.filter((n) => n.name !== last.primary).map((n) => n.name);
    if (last.primary !== null && others.every((n) => streaming.includes(n)))
      return {
        changed: true,
        primary: last.primary,
        replicas: streaming,
        leftOut: [],
        steps: [],
        notes: [],
        durationMs: ctx.clock.now() - began,
      };
    await ctx.clock.sleep(200);
  }
  const missing = ctx.spec.nodes
    .filter((n) => n.name !== last.primary && !last.streaming.includes(n.name))
    .map((n) => n.name);
  throw new PgreplError(
    'E_TIMEOUT',
    `the agents did not form the cluster within ${o.timeoutMs / 1000} s: ` +
      (last.primary === null
        ? 'no primary yet'
        : `${last.primary} is primary, ${missing.join(', ')} not streaming`) +
      `; the agents' logs are under ${o.logs} (\`pgrepl status\` shows each agent's decision)`,
  );
}

/**
 * Refuses, before anything is written, a spec whose settings the PostgreSQL binary in use rejects
 * (an unknown name, a bad type, a value out of range): written to every node, such a setting would
 * only fail at the next restart, in the middle of a switchover.
 */
async function assertSettingsAccepted(ctx: ClusterContext): Promise<void> {
  const bad = await checkSettings(ctx.env, ctx.spec.settings);
  if (bad.length === 0) return;
  // Loaded only now: an unchanged spec comes from the parse cache without the YAML parser and zod.
  const { specProblemsError } = await import('../../cluster-spec/parse-spec.js');
  throw specProblemsError(
    specText(ctx.spec),
    ctx.spec.source,
    bad.map((b) => ({
      path: ['settings', b.name],
      message: `PostgreSQL ${ctx.env.bins.version} rejects it: ${b.message}`,
    })),
  );
}
