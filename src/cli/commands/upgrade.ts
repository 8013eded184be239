import { resolve } from 'node:path';
import { PgreplError } from '../../errors.js';
import { sqlOn, sqlOnDatabase } from '../../cluster/context/node-sql.js';
import { planUpgrade } from '../../cluster/decide/plan-upgrade.js';
import type { UpgradeDatabase } from '../../cluster/decide/plan-upgrade.js';
import { formatBytes } from '../../cluster/decide/status-report.js';
import { primaryOf } from '../../cluster/operations/move-writes.js';
import { installationIn } from '../../postgres/find-binaries.js';
import { installationExtensions } from '../../postgres/installation-extensions.js';
import { readDatabaseFacts, readTableFacts } from '../../postgres/logical-queries.js';
import { commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';
import type { ClusterContext } from '../../cluster/context/cluster-context.js';
import { EXIT_UNHEALTHY } from './status.js';

export interface UpgradeOptions {
  toBin?: string;
  plan?: boolean;
  portOffset?: string;
  nodes?: string;
  skipCheck?: string[];
  prepareOnly?: boolean;
  cutover?: boolean;
  rollback?: boolean;
  finish?: boolean;
  drainBudget?: string;
  json?: boolean;
}

/**
 * The initial copy's rate the estimate assumes: what `npm run bench:logical` measured on a 2-core
 * machine, rounded down (a user's machine and tables differ: it is an order of magnitude).
 */
const COPY_MB_PER_SECOND = 40;

/**
 * `upgrade`: `--to-bin DIR --plan` prints what an online upgrade would do; `--to-bin DIR` does it
 * (and cuts over unless `--prepare-only`); `--cutover`, `--rollback`, `--finish` go on with the one
 * under way; with none of them, where it stands.
 */
export async function runUpgrade(g: GlobalOptions, o: UpgradeOptions): Promise<number> {
  const actions = [o.toBin !== undefined, o.cutover, o.rollback, o.finish].filter((x) => x === true);
  if (actions.length > 1)
    throw new PgreplError('E_USAGE', 'give one of --to-bin DIR, --cutover, --rollback, --finish');
  if (o.plan === true && o.toBin === undefined)
    throw new PgreplError('E_USAGE', '--plan plans an upgrade to --to-bin DIR: give both');
  const ctx = await commandContext(g);
  if (o.toBin !== undefined && o.plan === true) return printPlan(ctx, o.toBin, o);
  const { runUpgradeStep } = await import('./upgrade-steps.js');
  return runUpgradeStep(g, ctx, o);
}

/** The plan of an upgrade to `toBin`, read from the running cluster: nothing is changed. */
export async function planFor(ctx: ClusterContext, toBin: string, portOffsetText: string | undefined) {
  const portOffset = Number(portOffsetText ?? '100');
  if (!Number.isInteger(portOffset) || portOffset === 0)
    throw new PgreplError(
      'E_USAGE',
      `--port-offset takes a whole number other than 0, not "${portOffsetText}"`,
    );
  const to = await installationIn(resolve(toBin), '--to-bin', ctx.env.runner);
  const primary = await primaryOf(ctx);
  const names = (
    await sqlOn(ctx, primary, (s) =>
      s.query<{ name: string }>(
        'SELECT datname AS name FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1',
      ),
    )
  ).map((r) => r.name);
  const databases: UpgradeDatabase[] = [];
  for (const name of names)
    databases.push(
      await sqlOnDatabase(ctx, primary, name, async (s) => {
        const tables = await readTableFacts(s, 'all');
        const [size] = await s.query<{ bytes: string | null }>(
          'SELECT sum(pg_table_size(t::regclass))::text AS bytes FROM unnest($1::text[]) t',
          [tables.map((t) => t.table)],
        );
        return { name, tables, facts: await readDatabaseFacts(s), tableBytes: Number(size?.bytes ?? 0) };
      }),
    );
  const plan = planUpgrade({
    spec: ctx.spec,
    fromMajor: ctx.env.bins.major,
    to,
    newExtensions: await installationExtensions(to.binDir, ctx.env.runner),
    portOffset,
    databases,
    copyMbPerSecond: COPY_MB_PER_SECOND,
  });
  if ('refusal' in plan) throw new PgreplError('E_USAGE', plan.refusal);
  return { plan, to, primary, databases: names, portOffset };
}

async function printPlan(ctx: ClusterContext, toBin: string, o: UpgradeOptions): Promise<number> {
  const { plan, to } = await planFor(ctx, toBin, o.portOffset);
  if (o.json) process.stdout.write(`${JSON.stringify({ from: ctx.env.bins.version, ...plan }, null, 2)}\n`);
  else {
    const lines = [
      `upgrade of cluster ${ctx.spec.cluster} from PostgreSQL ${ctx.env.bins.version} to ${to.version} (plan only: nothing was changed)`,
      ...plan.steps.map((s, n) => `  ${n + 1}. ${s}`),
      `initial copy: ${formatBytes(plan.copyBytes)} of tables, about ${Math.max(1, Math.round(plan.copySeconds))} s at ${COPY_MB_PER_SECOND} MB/s`,
      plan.findings.length === 0 ? 'pre-flight check: nothing found' : 'pre-flight check:',
      ...plan.findings.map(
        (f) =>
          `  ${f.severity === 'error' ? 'ERROR' : 'note '} [${f.code}] ${f.database}: ${f.message}\n        fix: ${f.fix}`,
      ),
      ...(plan.blocking > 0
        ? [`${plan.blocking} finding${plan.blocking === 1 ? '' : 's'} would refuse the upgrade until fixed`]
        : []),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return plan.blocking > 0 ? EXIT_UNHEALTHY : 0;
}
