import { applyUp, planCluster } from '../../cluster/operations/run-up.js';
import type { UpPlan, UpResult } from '../../cluster/operations/run-up.js';
import type { ClusterContext } from '../../cluster/context/cluster-context.js';
import type { PlanOptions } from '../../cluster/decide/plan-up.js';
import { describeStep } from '../../cluster/decide/plan-step.js';
import { nodeOf } from '../../cluster/actions/node-actions.js';
import { PgreplError } from '../../errors.js';
import { EMBEDDED_SOURCE } from '../../spec/load-spec.js';
import { changing, commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';

export interface UpOptions {
  dryRun?: boolean;
  json?: boolean;
}

const say = (text: string) => process.stderr.write(`${text}\n`);

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
  const r = await changing(ctx, plan.create ? 'up' : 'start', async () => {
    const decided = await planCluster(ctx, plan);
    // `start NODE` that has nothing to start says why it stays as it is, and fails.
    const only = plan.only;
    if (only !== undefined && decided.plan.steps.length === 0) {
      const why = decided.plan.notes.find((n) => n.startsWith(`${only} `));
      if (why !== undefined) throw new PgreplError('E_LEFT_STOPPED', why);
    }
    return applyUp(ctx, decided);
  });
  if (plan.only !== undefined && !o.json) {
    process.stdout.write(
      r.steps.length === 0
        ? `${plan.only} already runs\n`
        : `${plan.only} started in ${(r.durationMs / 1000).toFixed(1)} s\n`,
    );
    return 0;
  }
  printResult(ctx, o, r);
  return 0;
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

export function printResult(ctx: ClusterContext, o: { json?: boolean }, r: UpResult): void {
  const { cluster } = ctx.spec;
  if (o.json) {
    const { changed, primary, replicas, leftOut, steps, durationMs } = r;
    process.stdout.write(
      `${JSON.stringify({ cluster, changed, primary, replicas, leftOut, steps, durationMs }, null, 2)}\n`,
    );
    return;
  }
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
