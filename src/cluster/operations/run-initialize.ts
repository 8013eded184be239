import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import { prepareStateDir } from '../context/cluster-context.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { readCertsOf } from '../actions/node-certs.js';
import { planCerts } from '../decide/plan-certs.js';
import type { Plan } from '../decide/plan-step.js';
import { applyPlan } from './apply-plan.js';

/**
 * The steps that make `node` the first primary of a cluster with no data anywhere: its certificates
 * (tls: auto), initdb with pgrepl's configuration, the replication role, and a slot for every other
 * node of the spec, so that each can clone and stream through its own from the first WAL on.
 */
export function planInitialize(ctx: ClusterContext, node: NodeSpec): Plan {
  const here = new Set([node.name]);
  const certs = readCertsOf(ctx, [node.name]);
  // A CA whose key is not on this host was shipped with its certificates (`render`): they are used
  // as they are; a CA made here would be trusted by no other host.
  const shipped = certs.ca.present && !certs.caKey;
  return {
    primary: node.name,
    steps: [
      ...(shipped ? [] : planCerts(ctx.spec, certs, here, ctx.clock.wallNow())),
      {
        kind: 'init-primary',
        node: node.name,
        reason: `no node has data yet and ${node.name}'s agent won the cluster's initialize key`,
      },
      {
        kind: 'ensure-replication-role',
        node: node.name,
        reason: `the replicas connect as ${ctx.spec.replication.user}`,
      },
      ...ctx.spec.nodes
        .filter((n) => n.name !== node.name)
        .map((n) => ({
          kind: 'create-slot' as const,
          node: node.name,
          slot: n.name,
          reason: `${n.name} clones and streams through its own slot`,
        })),
    ],
    notes: [],
    refusal: null,
  };
}

/**
 * Initializes the cluster on the agent's own node (the agent holds the initialize claim and the
 * leader key): its passwords and state directory, then planInitialize's steps.
 */
export async function runInitialize(ctx: ClusterContext, node: NodeSpec): Promise<void> {
  const prepared = prepareStateDir(ctx, { roleHasPassword: false });
  await applyPlan(prepared, planInitialize(prepared, node), {});
}
