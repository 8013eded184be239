import {
  applyUp,
  createsCluster,
  planCluster,
  prepareForAgents,
  waitFormed,
} from '../../cluster/operations/run-up.js';
import type { UpPlan, UpResult } from '../../cluster/operations/run-up.js';
import type { ClusterContext } from '../../cluster/context/cluster-context.js';
import type { PlanOptions } from '../../cluster/decide/plan-up.js';
import { describeStep } from '../../cluster/decide/plan-step.js';
import { nodeOf } from '../../cluster/context/node-sql.js';
import { createStanza, ensureBackupWithAgents } from '../../cluster/actions/backup-actions.js';
import { observeCluster } from '../../cluster/observe/observe-cluster.js';
import { ensureLogicalWithAgents } from '../../cluster/operations/plan-logical.js';
import { onlyPrimary } from '../../cluster/observe/observation.js';
import { PgreplError } from '../../errors.js';
import { EMBEDDED_SOURCE } from '../../cluster-spec/load-spec.js';
import { changing, commandContext, jsonResult, topologyOf } from '../command-context.js';
import {
  agentApiTls,
  agentApiUrl,
  agentPid,
  effectiveHa,
  ensureAgents,
  ensureLocalEtcd,
  haPaths,
  recordHaOn,
} from '../../ha/ha-services.js';
import { freePort } from '../../ha/free-port.js';
import { logTail } from '../../postgres/instance-control.js';
import { requestJson } from '../../dcs/http-json.js';
import type { TlsMaterial } from '../../dcs/http-json.js';
import { dirname } from 'node:path';
import { CLI_SCRIPT } from '../../package-files.js';
import type { GlobalOptions } from '../command-context.js';
import { monotonicNow } from '../../monotonic-now.js';

export interface UpOptions {
  dryRun?: boolean;
  json?: boolean;
  /** Turn automatic failover on: etcd (a local one unless the spec lists some) and an agent per node. */
  ha?: boolean;
}

const say = (text: string) => process.stderr.write(`${text}\n`);

/** How long `up --ha` waits for the agents to form a new cluster (initdb, then every clone). */
const FORM_TIMEOUT_MS = 180_000;

/**
 * `up` (create: true) and `start` (create: false): observe, plan, print or apply, then verify that
 * every setting pgrepl wrote is in effect.
 */
export async function runUp(g: GlobalOptions, o: UpOptions, plan: PlanOptions): Promise<number> {
  const ctx = await commandContext(g);
  if (plan.only !== undefined) nodeOf(ctx, plan.only);
  if (ctx.spec.source === EMBEDDED_SOURCE) {
    say(
      `no pgrepl.yaml here: using the embedded default (${ctx.spec.nodes.length} nodes on ${ctx.spec.nodes[0]?.host} from port ${ctx.spec.nodes[0]?.port}, ` +
        `state under ${ctx.spec.stateDir}); \`pgrepl init\` writes it to a file you can edit`,
    );
  }
  if (o.dryRun) {
    printPlan(ctx, o, await planCluster(ctx, plan));
    return 0;
  }
  // `start NODE` of a node an agent runs: its agent starts it (and stops leaving it stopped).
  const started =
    plan.only !== undefined && !plan.create ? await (await topologyOf(ctx)).startNode(plan.only) : null;
  if (started) {
    process.stdout.write(
      o.json
        ? jsonResult({ via: 'agents', ...started })
        : `${started.node} runs (${started.role}), started through its agent in ${started.ms} ms\n`,
    );
    return 0;
  }
  const haOn = o.ha === true || effectiveHa(ctx.spec) !== undefined;
  // Once agents run, the nodes are theirs: `up` only makes sure every agent (and etcd) runs.
  if (haOn && ctx.spec.nodes.some((n) => agentPid(ctx.spec, n.name) !== null)) {
    const agents = await startHa(ctx, g);
    const { publications, subscriptions } = ctx.spec.logical;
    // Observed only for what needs the primary: a cluster with neither is left to its agents as it is.
    const primary =
      ctx.spec.backup || publications.length + subscriptions.length > 0
        ? (onlyPrimary((await observeCluster(ctx)).nodes)?.node ?? null)
        : null;
    if (ctx.spec.backup) {
      const backupNote = await ensureBackupWithAgents(ctx, primary);
      if (backupNote !== null && !o.json) say(`backup: ${backupNote}`);
    }
    const logicalNote = await ensureLogicalWithAgents(ctx, primary);
    if (logicalNote !== null && !o.json) say(`logical: ${logicalNote}`);
    if (!o.json) process.stdout.write(`agents run this cluster; ${describeAgents(agents)}\n`);
    else
      process.stdout.write(
        `${JSON.stringify({ cluster: ctx.spec.cluster, changed: false, agents }, null, 2)}\n`,
      );
    return 0;
  }
  const applied = await changing(ctx, plan.create ? 'up' : 'start', async () => {
    const decided = await planCluster(ctx, plan);
    // `start NODE` that has nothing to start says why it stays as it is, and fails.
    const only = plan.only;
    if (only !== undefined && decided.plan.steps.length === 0) {
      const why = decided.plan.notes.find((n) => n.startsWith(`${only} `));
      if (why !== undefined) throw new PgreplError('E_LEFT_STOPPED', why);
    }
    // A new cluster with agents: they form it, as they would on hosts of their own (issue 13).
    if (haOn && only === undefined && createsCluster(decided))
      return {
        forming: await prepareForAgents(ctx, decided),
        stanza: decided.plan.steps.find((s) => s.kind === 'create-stanza'),
      };
    return applyUp(ctx, decided);
  });
  if ('forming' in applied) {
    const agents = await startHa(ctx, g);
    if (!o.json) say(`${describeAgents(agents)}; they form the cluster`);
    const formed = await waitFormed(applied.forming, {
      timeoutMs: FORM_TIMEOUT_MS,
      logs: haPaths(ctx.spec.stateDir).agentsDir,
    });
    // The agents formed the cluster; its stanza is made from the primary they chose.
    const stanza = applied.stanza;
    if (stanza && formed.primary !== null) {
      if (!o.json) say(describeStep({ ...stanza, node: formed.primary }));
      await createStanza(applied.forming, nodeOf(ctx, formed.primary));
    }
    printResult(ctx, o, formed, o.json ? agents : undefined);
    return 0;
  }
  const r = applied;
  if (plan.only !== undefined && !o.json) {
    process.stdout.write(
      r.steps.length === 0
        ? `${plan.only} already runs\n`
        : `${plan.only} started in ${(r.durationMs / 1000).toFixed(1)} s\n`,
    );
    return 0;
  }
  const agents = haOn ? await startHa(ctx, g) : undefined;
  printResult(ctx, o, r, agents);
  return 0;
}

/** Starts etcd (a local one unless the spec lists some) and an agent per node of this machine; waits until each answers. */
async function startHa(ctx: ClusterContext, g: GlobalOptions): Promise<Record<string, AgentStart>> {
  const { spec } = ctx;
  if (spec.ha?.etcd) recordHaOn(spec);
  else await ensureLocalEtcd(spec, ctx.processEnv, freePort);
  const ha = effectiveHa(spec);
  if (!ha) throw new Error('HA was just recorded as on');
  const local = spec.nodes.filter((n) => ctx.localNodes.has(n.name));
  const pids = ensureAgents(spec, local, {
    cli: CLI_SCRIPT,
    cwd: process.cwd(),
    logFormat: g.logFormat === 'json' ? 'json' : 'human',
  });
  const agents: Record<string, AgentStart> = {};
  for (const n of local) {
    const api = agentApiUrl(spec, n, ha);
    await waitAgentLive(api, agentApiTls(spec), haPaths(spec.stateDir).agentLog(n.name), 30_000);
    agents[n.name] = { pid: pids[n.name] as number, api, log: haPaths(spec.stateDir).agentLog(n.name) };
  }
  return agents;
}

interface AgentStart {
  pid: number;
  api: string;
  log: string;
}

const describeAgents = (agents: Record<string, AgentStart>) =>
  `agents: ${Object.entries(agents)
    .map(([n, a]) => `${n} (pid ${a.pid}, ${a.api})`)
    .join(', ')}; logs under ${dirname(dirname(Object.values(agents)[0]?.log ?? '.'))}`;

/** Waits until an agent's /liveness answers 200 (its first loop is done); E_TIMEOUT with its log's end otherwise. */
async function waitAgentLive(
  api: string,
  tls: TlsMaterial | undefined,
  log: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = monotonicNow() + timeoutMs;
  while (monotonicNow() < deadline) {
    try {
      if ((await requestJson(`${api}/liveness`, null, AbortSignal.timeout(1000), {}, tls)).status === 200)
        return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new PgreplError(
    'E_TIMEOUT',
    `the agent at ${api} did not come up within ${timeoutMs / 1000} s; its log ${log} says:\n${logTail(log)}`,
  );
}

function printPlan(ctx: ClusterContext, o: UpOptions, { plan }: UpPlan): void {
  const { steps } = plan;
  if (o.json)
    process.stdout.write(`${JSON.stringify({ cluster: ctx.spec.cluster, dryRun: true, steps }, null, 2)}\n`);
  else if (steps.length === 0)
    process.stdout.write(`cluster ${ctx.spec.cluster} is up to date; nothing to do\n`);
  else
    process.stdout.write(
      `${steps.map((s, i) => `${i + 1}. ${describeStep(s)}\n     because ${s.reason}`).join('\n')}\n`,
    );
}

export function printResult(
  ctx: ClusterContext,
  o: { json?: boolean },
  r: UpResult,
  agents?: Record<string, AgentStart>,
): void {
  const { cluster } = ctx.spec;
  if (o.json) {
    const { changed, primary, replicas, leftOut, steps, durationMs } = r;
    process.stdout.write(
      `${JSON.stringify({ cluster, changed, primary, replicas, leftOut, steps, durationMs, ...(agents ? { agents } : {}) }, null, 2)}\n`,
    );
    return;
  }
  if (agents) say(describeAgents(agents));
  const streaming = r.replicas.length > 0 ? `, ${r.replicas.join(', ')} streaming` : '';
  const left = r.leftOut.map((l) => `\n${l.why}`).join('');
  if (!r.changed && r.leftOut.length === 0)
    process.stdout.write(
      `cluster ${cluster} is up to date: ${r.primary} primary, ${r.replicas.length} replica(s) streaming; nothing changed\n`,
    );
  else
    process.stdout.write(
      `cluster ${cluster} is up in ${(r.durationMs / 1000).toFixed(1)} s: ${r.primary} primary${streaming}. See \`pgrepl status\`.${left}\n`,
    );
}
