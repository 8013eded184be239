import { applyUp, planCluster } from '../../cluster/operations/run-up.js';
import type { UpPlan, UpResult } from '../../cluster/operations/run-up.js';
import type { ClusterContext } from '../../cluster/context/cluster-context.js';
import type { PlanOptions } from '../../cluster/decide/plan-up.js';
import { describeStep } from '../../cluster/decide/plan-step.js';
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
  const r = await changing(ctx, plan.create ? 'up' : 'start', async () =>
    applyUp(ctx, await planCluster(ctx, plan)),
  );
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
    const { changed, primary, replicas, steps, durationMs } = r;
    process.stdout.write(
      `${JSON.stringify({ cluster, changed, primary, replicas, steps, durationMs }, null, 2)}\n`,
    );
  } else if (!r.changed && r.notes.length === 0) {
    process.stdout.write(
      `cluster ${cluster} is up to date: ${r.primary} primary, ${r.replicas.length} replica(s); nothing changed\n`,
    );
  } else {
    process.stdout.write(
      `cluster ${cluster} is up in ${(r.durationMs / 1000).toFixed(1)} s: ${r.primary} primary` +
        `${r.replicas.length > 0 ? `, ${r.replicas.join(', ')} streaming` : ''}. See \`pgrepl status\`.\n`,
    );
  }
}
