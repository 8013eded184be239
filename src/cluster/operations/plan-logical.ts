import { PgreplError } from '../../errors.js';
import { logicalDatabases } from '../../cluster-spec/cluster-spec.js';
import type { NodeSpec, SubscriptionSpec } from '../../cluster-spec/cluster-spec.js';
import type { SubscriptionState } from '../../postgres/logical-queries.js';
import {
  readPublications,
  readSubscriptions,
  readTableFacts,
  readDatabaseFacts,
} from '../../postgres/logical-queries.js';
import { publisherOf, publisherSlot, readPublished, runLogicalStep } from '../actions/logical-actions.js';
import { sqlOn, sqlOnDatabase } from '../context/node-sql.js';
import type { ClusterContext } from '../context/cluster-context.js';
import {
  blockingFindings,
  decidePublications,
  decideSubscriptions,
  preflightPublisher,
  preflightSubscriber,
} from '../decide/decide-logical.js';
import type { PreflightFinding } from '../decide/decide-logical.js';
import { describeStep } from '../decide/plan-step.js';
import type { Step } from '../decide/plan-step.js';
import type { PreflightCode } from '../../cluster-spec/preflight-codes.js';

export interface LogicalPlan {
  readonly steps: Step[];
  readonly notes: string[];
  /** Every finding of the pre-flight checks of what the steps make, warnings included. */
  readonly findings: PreflightFinding[];
}

/** No change: `start`, or a spec without `logical:`. */
export const NO_LOGICAL: LogicalPlan = { steps: [], notes: [], findings: [] };

/**
 * What `up` does for the spec's `logical:` section on the running primary: the publications and
 * subscriptions it lacks or that differ, each checked first (the publisher's tables, and for a
 * subscription the subscriber's against them). A blocking finding refuses the whole plan with
 * E_LOGICAL_PREFLIGHT, before anything changed. Reads only.
 */
export async function planLogical(ctx: ClusterContext, primary: NodeSpec | null): Promise<LogicalPlan> {
  const { publications, subscriptions } = ctx.spec.logical;
  if (publications.length + subscriptions.length === 0) return NO_LOGICAL;
  if (primary === null)
    return {
      steps: [],
      notes: ['publications and subscriptions are made once the primary runs: run `pgrepl up` again then'],
      findings: [],
    };
  const steps: Step[] = [];
  const notes: string[] = [];
  const findings: { subject: string; found: PreflightFinding[]; skip: readonly PreflightCode[] }[] = [];
  for (const database of logicalDatabases(ctx.spec.logical)) {
    const pubs = publications.filter((p) => p.database === database);
    const subs = subscriptions.filter((x) => x.database === database);
    const state = await sqlOnDatabase(ctx, primary, database, async (s) => ({
      publications: await readPublications(s),
      subscriptions: await readSubscriptions(s),
    }));
    const decided = [
      decidePublications(primary.name, pubs, state.publications),
      decideSubscriptions(
        primary.name,
        subs,
        state.subscriptions,
        await slotsOnPublishers(ctx, subs, state.subscriptions),
      ),
    ];
    for (const d of decided) {
      steps.push(...d.steps);
      notes.push(...d.notes);
    }
    for (const step of decided.flatMap((d) => d.steps)) {
      if (step.kind !== 'logical' || step.action === 'set-subscription-publication') continue;
      const pub = pubs.find((p) => p.name === step.name);
      if (pub) {
        const found = await sqlOnDatabase(ctx, primary, database, async (s) =>
          preflightPublisher(pub.tables, await readTableFacts(s, pub.tables), await readDatabaseFacts(s)),
        );
        findings.push({ subject: `publication ${pub.name}`, found, skip: pub.skipChecks });
        continue;
      }
      const sub = subs.find((x) => x.name === step.name);
      if (!sub || step.action !== 'create-subscription') continue;
      const conn = await publisherOf(ctx, sub);
      const published = await readPublished(conn, sub.publication);
      const local = await sqlOnDatabase(ctx, primary, database, async (s) => ({
        tables: await readTableFacts(
          s,
          published.tables.map((t) => t.table),
        ),
        db: await readDatabaseFacts(s),
      }));
      findings.push({
        subject: `subscription ${sub.name} (from ${conn.label})`,
        found: [
          ...preflightPublisher(
            published.tables.map((t) => t.table),
            published.tables,
            published.db,
          ),
          ...preflightSubscriber(published.tables, published.db, local.tables, local.db),
        ],
        skip: sub.skipChecks,
      });
    }
  }
  const blocking = findings.flatMap((f) =>
    blockingFindings(f.found, f.skip).map((b) => ({ ...b, subject: `${f.subject}: ${b.subject}` })),
  );
  if (blocking.length > 0)
    throw new PgreplError(
      'E_LOGICAL_PREFLIGHT',
      `the pre-flight check refuses; nothing was changed:\n${blocking
        .map((b) => `  [${b.code}] ${b.message}\n      fix: ${b.fix}`)
        .join(
          '\n',
        )}\nfix each, or skip its code in the spec's skipChecks: (pgrepl logical ... --skip-check CODE)`,
    );
  const warnings = findings.flatMap((f) =>
    f.found
      .filter((x) => x.severity === 'warning' && !f.skip.includes(x.code))
      .map((x) => `${f.subject}: [${x.code}] ${x.message} (${x.fix})`),
  );
  return { steps, notes: [...notes, ...warnings], findings: findings.flatMap((f) => f.found) };
}

/** The wal_level `node` runs with. */
export async function walLevelOf(ctx: ClusterContext, node: NodeSpec): Promise<string | undefined> {
  const [row] = await sqlOn(ctx, node, (s) =>
    s.query<{ level: string }>("SELECT current_setting('wal_level') AS level"),
  );
  return row?.level;
}

/**
 * With agents running the cluster (`up` leaves the nodes to them): the logical plan made and
 * performed on the primary, step by step as `up` reports them. A publication waits for the
 * nodes to run with wal_level logical, which takes a restart the agents do (`pgrepl restart`).
 * Returns what to tell the user, or null when there was nothing to do.
 */
export async function ensureLogicalWithAgents(
  ctx: ClusterContext,
  primary: NodeSpec | null,
): Promise<string | null> {
  const { publications, subscriptions } = ctx.spec.logical;
  if (publications.length + subscriptions.length === 0) return null;
  if (primary === null)
    return 'no primary runs: the next `pgrepl up` makes the publications and subscriptions';
  if (publications.length > 0) {
    const level = await walLevelOf(ctx, primary);
    if (level !== 'logical')
      return `${primary.name} runs with wal_level ${level}: \`pgrepl restart --switchover\` has the agents restart every node with wal_level logical; then run \`pgrepl up\` again, which makes the publications`;
  }
  const plan = await planLogical(ctx, primary);
  for (const message of plan.notes) ctx.events.emit({ event: 'note', message: `note: ${message}` });
  for (const step of plan.steps) {
    if (step.kind !== 'logical') continue;
    ctx.events.emit({ event: 'action', node: step.node, message: describeStep(step) });
    await runLogicalStep(ctx, primary, step);
  }
  return plan.steps.length === 0
    ? null
    : `${plan.steps.length} logical replication step${plan.steps.length === 1 ? '' : 's'} done on ${primary.name}`;
}

/**
 * For each enabled subscription, whether its slot is on its publisher's primary (a publisher that
 * cannot be read is left out: nothing is decided on a guess).
 */
async function slotsOnPublishers(
  ctx: ClusterContext,
  wanted: readonly SubscriptionSpec[],
  present: readonly SubscriptionState[],
): Promise<Map<string, boolean>> {
  const found = new Map<string, boolean>();
  for (const has of present.filter((x) => x.enabled)) {
    const sub = wanted.find((x) => x.name === has.name);
    if (!sub || has.slotName === null) continue;
    try {
      found.set(sub.name, (await publisherSlot(ctx, sub, has.slotName)) !== undefined);
    } catch {
      // Unreachable now: the next `up` looks again.
    }
  }
  return found;
}
