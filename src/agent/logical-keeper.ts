import type { ClusterContext } from '../cluster/context/cluster-context.js';
import type { NodeSpec } from '../cluster-spec/cluster-spec.js';
import { leadsAsPrimary } from './agent-state.js';
import type { AgentState } from './agent-state.js';

/** How often the leader looks at its subscriptions' slots on their publishers. */
const CHECK_MS = 5000;

/**
 * The subscriptions of the spec, kept by whichever agent leads: every few seconds, beside its loop,
 * it looks whether a publisher's failover (before PostgreSQL 17) lost a subscription's slot, and
 * re-syncs that subscription as `up` would (its tables copied again through a new slot), saying so.
 */
export function logicalKeeper(d: {
  readonly context: () => { readonly ctx: ClusterContext; readonly node: NodeSpec };
}) {
  let busy = false;
  let lastAt = -Infinity;
  // Said once until it changes: a subscription the pre-flight check refuses would say it every look.
  let lastError = '';
  return {
    onLoop(state: AgentState): void {
      const { ctx, node } = d.context();
      if (ctx.spec.logical.subscriptions.length === 0) return;
      if (!leadsAsPrimary(state) || busy || ctx.clock.now() - lastAt < CHECK_MS) return;
      busy = true;
      lastAt = ctx.clock.now();
      void (async () => {
        // Loaded when first needed: an agent without subscriptions never loads logical replication.
        const { planLogical } = await import('../cluster/operations/plan-logical.js');
        const { runLogicalStep } = await import('../cluster/actions/logical-actions.js');
        const plan = await planLogical(ctx, node);
        for (const step of plan.steps) {
          if (step.kind !== 'logical' || step.action !== 'resync-subscription') continue;
          ctx.events.emit({ event: 'action', node: node.name, message: step.reason });
          await runLogicalStep(ctx, node, step);
          ctx.events.emit({
            event: 'action',
            node: node.name,
            message: `subscription ${step.name} re-synced: its tables are being copied again`,
          });
        }
      })()
        .then(() => (lastError = ''))
        .catch((err: unknown) => {
          const error = (err as Error).message;
          if (error !== lastError)
            ctx.events.emit({
              event: 'agent-error',
              node: node.name,
              during: 'keeping the subscriptions',
              error,
            });
          lastError = error;
        })
        .finally(() => (busy = false));
    },
  };
}
