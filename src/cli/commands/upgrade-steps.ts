import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { PgreplError } from '../../errors.js';
import { EMBEDDED_SOURCE } from '../../cluster-spec/load-spec.js';
import type { SubscriptionSpec } from '../../cluster-spec/cluster-spec.js';
import { createSubscription } from '../../cluster/actions/logical-actions.js';
import type { ClusterContext } from '../../cluster/context/cluster-context.js';
import { nodeOf, sqlOnDatabase } from '../../cluster/context/node-sql.js';
import { upgradeSpecDocument } from '../../cluster/decide/upgrade-spec.js';
import type { UpgradeSpecStage } from '../../cluster/decide/upgrade-spec.js';
import { copySchema } from '../../cluster/operations/copy-schema.js';
import { walLevelOf } from '../../cluster/operations/plan-logical.js';
import {
  dropSubscription,
  matchReplicas,
  moveWrites,
  notStreaming,
  primaryOf,
} from '../../cluster/operations/move-writes.js';
import type { MoveResult } from '../../cluster/operations/move-writes.js';
import {
  readUpgradeRecord,
  removeUpgradeRecord,
  writeUpgradeRecord,
} from '../../cluster/operations/upgrade-record.js';
import type { UpgradeRecord } from '../../cluster/operations/upgrade-record.js';
import { effectiveHa } from '../../ha/ha-services.js';
import {
  blockDdl,
  dropSlotIfIdle,
  makeWayBackSlot,
  skipToNow,
  unblockDdl,
  WAY_BACK_SLOT_TIMEOUT_S,
} from '../../postgres/upgrade-queries.js';
import type { SqlSession } from '../../postgres/sql-client.js';
import {
  rollbackSubscription,
  UPGRADE_PUBLICATION,
  upgradeSubscription,
} from '../../postgres/upgrade-names.js';
import { commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';
import { runDestroy, runDown, runRestart } from './lifecycle.js';
import { addAndApply, removePublications } from './logical.js';
import { runUp } from './up.js';
import { planFor } from './upgrade.js';
import type { UpgradeOptions } from './upgrade.js';

/*
 * The online upgrade's steps, as commands: each goes on from where the record in the old
 * cluster's state dir says the upgrade stands. The clusters themselves are made and changed by the
 * commands a user would run (`up`, `destroy`, `down`) on the two spec files, so that each side
 * stays an ordinary pgrepl cluster all along.
 */

/** How long the cutover waits by default for the subscriptions to confirm every commit before the fence. */
const DRAIN_BUDGET_MS = 5000;
/** How long the initial copy may take before the upgrade stops waiting (it goes on in the background). */
const CATCH_UP_TIMEOUT_MS = 6 * 3600 * 1000;

const say = (text: string) => process.stderr.write(`${text}\n`);

export async function runUpgradeStep(
  g: GlobalOptions,
  ctx: ClusterContext,
  o: UpgradeOptions,
): Promise<number> {
  const rec = readUpgradeRecord(ctx.spec.stateDir);
  const budgetMs = drainBudget(o.drainBudget);
  if (o.toBin !== undefined) {
    if (rec && rec.phase !== 'finished')
      throw new PgreplError(
        'E_UPGRADE_STATE',
        `an upgrade to ${rec.cluster} (PostgreSQL ${rec.version}) is under way (${rec.phase}): go on with \`pgrepl upgrade --cutover\`, \`--finish\` or \`--rollback\``,
      );
    if (rec?.phase === 'finished')
      throw new PgreplError(
        'E_UPGRADE_STATE',
        `this cluster was upgraded to ${rec.cluster}: its spec is ${rec.specFile}`,
      );
    const made = await prepare(g, ctx, o.toBin, o);
    if (o.prepareOnly === true) {
      report(o, { phase: made.phase, cluster: made.cluster, specFile: made.specFile }, [
        `${made.cluster} (PostgreSQL ${made.version}) has caught up with ${ctx.spec.cluster}; DDL is refused on ${ctx.spec.cluster} until the upgrade ends`,
        'run `pgrepl upgrade --cutover` to move the writes, or `pgrepl upgrade --rollback` to undo it',
      ]);
      return 0;
    }
    return cutover(g, ctx, made, budgetMs, o);
  }
  if (!rec) {
    if (o.cutover || o.rollback || o.finish)
      throw new PgreplError(
        'E_UPGRADE_STATE',
        'no upgrade is under way: `pgrepl upgrade --to-bin DIR` starts one',
      );
    report(o, { phase: null }, ['no upgrade is under way']);
    return 0;
  }
  if (o.cutover) {
    if (rec.phase !== 'subscribed')
      throw new PgreplError(
        'E_UPGRADE_STATE',
        rec.phase === 'preparing'
          ? 'the new cluster is not ready yet: run `pgrepl upgrade --rollback` and start again'
          : `the upgrade is ${rec.phase}: there is nothing to cut over`,
      );
    return cutover(g, ctx, rec, budgetMs, o);
  }
  if (o.rollback) return rollback(g, ctx, rec, budgetMs, o);
  if (o.finish) return finish(g, ctx, rec, o);
  report(o, rec, [
    `upgrade to ${rec.cluster} (PostgreSQL ${rec.version}, spec ${rec.specFile}): ${rec.phase}` +
      (rec.gapMs === undefined ? '' : `; writes were refused for ${rec.gapMs} ms at the cutover`),
  ]);
  return 0;
}

function drainBudget(text: string | undefined): number {
  if (text === undefined) return DRAIN_BUDGET_MS;
  const ms = Number(text);
  if (!Number.isInteger(ms) || ms < 100)
    throw new PgreplError('E_USAGE', `--drain-budget takes milliseconds, at least 100, not "${text}"`);
  return ms;
}

function report(o: UpgradeOptions, json: object, lines: readonly string[]): void {
  process.stdout.write(o.json ? `${JSON.stringify(json, null, 2)}\n` : `${lines.join('\n')}\n`);
}

/**
 * Runs a command of the two clusters' (`up`, `destroy`, `down`) as a step of the upgrade: what it
 * prints is progress, on stderr; stdout stays the upgrade's own result.
 */
async function asStep<T>(what: string, fn: () => Promise<T>): Promise<T> {
  say(what);
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) =>
    (process.stderr.write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(
      chunk,
      ...rest,
    )) as typeof process.stdout.write;
  try {
    return await fn();
  } finally {
    process.stdout.write = write;
  }
}

const newSpecFile = (ctx: ClusterContext, major: number) => {
  const file = ctx.spec.source;
  return join(dirname(file), `${basename(file, extname(file))}-pg${major}${extname(file) || '.yaml'}`);
};

/** Writes the new cluster's spec for `stage` beside the old spec. */
function writeNewSpec(ctx: ClusterContext, rec: UpgradeRecord, stage: UpgradeSpecStage): void {
  const old = parse(readFileSync(ctx.spec.source, 'utf8')) as Record<string, unknown>;
  const doc = upgradeSpecDocument({
    old,
    oldFile: basename(ctx.spec.source),
    cluster: rec.cluster,
    stateDir: rec.stateDir,
    binDir: rec.binDir,
    portOffset: rec.portOffset,
    nodes: rec.nodes,
    superuser: ctx.spec.superuser.password,
    replication: ctx.spec.replication.password,
    databases: rec.databases,
    stage,
  });
  writeFileSync(
    rec.specFile,
    `# Written by \`pgrepl upgrade\` from ${basename(ctx.spec.source)} (${stage}); after \`pgrepl upgrade --finish\` it is the cluster's spec.\n${stringify(doc)}`,
  );
}

const newContext = (g: GlobalOptions, rec: UpgradeRecord) => commandContext({ ...g, config: rec.specFile });

/**
 * Everything up to the cutover: the pre-flight check, the DDL block, the new cluster (bare, then
 * with the schema, then publishing and subscribed), and the wait for its initial copy.
 */
async function prepare(
  g: GlobalOptions,
  ctx: ClusterContext,
  toBin: string,
  o: UpgradeOptions,
): Promise<UpgradeRecord> {
  if (ctx.spec.source === EMBEDDED_SOURCE)
    throw new PgreplError('E_USAGE', "an upgrade needs the cluster's pgrepl.yaml: `pgrepl init` writes one");
  if (ctx.spec.logical.subscriptions.length > 0)
    throw new PgreplError(
      'E_USAGE',
      `cluster ${ctx.spec.cluster} subscribes to other clusters (logical.subscriptions): upgrading a subscriber is not supported yet`,
    );
  const { plan, to, primary, databases, portOffset } = await planFor(ctx, toBin, o.portOffset);
  const skip = o.skipCheck ?? [];
  const blocking = plan.findings.filter((f) => f.severity === 'error' && !skip.includes(f.code));
  if (blocking.length > 0)
    throw new PgreplError(
      'E_LOGICAL_PREFLIGHT',
      `the pre-flight check refuses the upgrade; nothing was changed:\n${blocking
        .map((f) => `  [${f.code}] ${f.database}: ${f.message}\n      fix: ${f.fix}`)
        .join(
          '\n',
        )}\nfix them, or accept one with --skip-check CODE (\`pgrepl upgrade --to-bin DIR --plan\` shows them all)`,
    );
  const nodes =
    o.nodes === undefined ? ctx.spec.nodes.map((n) => n.name) : o.nodes.split(',').map((n) => n.trim());
  for (const n of nodes) nodeOf(ctx, n);
  const rec0: UpgradeRecord = {
    phase: 'preparing',
    cluster: plan.target.cluster,
    specFile: newSpecFile(ctx, to.major),
    stateDir: plan.target.stateDir,
    binDir: to.binDir,
    version: to.version,
    portOffset,
    nodes,
    databases,
    addedPublications: false,
    startedAt: new Date(ctx.clock.wallNow()).toISOString(),
  };
  if (existsSync(rec0.specFile))
    throw new PgreplError(
      'E_SPEC_EXISTS',
      `${rec0.specFile} is there already: the new cluster's spec goes there; move it away first`,
    );
  writeUpgradeRecord(ctx.spec.stateDir, rec0);
  say(
    `upgrade of ${ctx.spec.cluster} (PostgreSQL ${ctx.env.bins.version}) to ${rec0.cluster} (PostgreSQL ${to.version})`,
  );
  say(
    `refusing DDL on ${ctx.spec.cluster} (${databases.join(', ')}) until the upgrade is finished or rolled back`,
  );
  for (const database of databases) await sqlOnDatabase(ctx, primary, database, blockDdl);
  writeNewSpec(ctx, rec0, 'build');
  const ha = effectiveHa(ctx.spec) !== undefined;
  await asStep(`making ${rec0.cluster} from ${rec0.specFile}`, () =>
    runUp({ ...g, config: rec0.specFile }, { ha }, { create: true }),
  );
  const next = await newContext(g, rec0);
  const nextPrimary = await primaryOf(next);
  say(`copying roles and the schema of ${databases.join(', ')}`);
  await copySchema(ctx, primary, next, nextPrimary, databases);
  await asStep(`publishing every table of ${ctx.spec.cluster} (${UPGRADE_PUBLICATION})`, async () => {
    await addAndApply(
      g,
      ['logical', 'publications'],
      databases.map((database) => ({ name: UPGRADE_PUBLICATION, database, all: true })),
      false,
    );
    if (ha) await restartForLogical(g, ctx);
  });
  const rec1: UpgradeRecord = { ...rec0, addedPublications: true };
  writeUpgradeRecord(ctx.spec.stateDir, rec1);
  writeNewSpec(ctx, rec1, 'subscribed');
  await asStep(`subscribing ${rec0.cluster} to it`, () =>
    runUp({ ...g, config: rec1.specFile }, { ha }, { create: true }),
  );
  await waitCaughtUp(next, nextPrimary, databases);
  const rec2: UpgradeRecord = { ...rec1, phase: 'subscribed' };
  writeUpgradeRecord(ctx.spec.stateDir, rec2);
  return rec2;
}

/**
 * With agents, `up` leaves restarts to them: when the primary still runs wal_level replica, a
 * rolling restart with a switchover (replicas first) brings logical, then `up` makes the
 * publications. Each agent restarts its node for the spec as it is now (it takes the file first).
 */
async function restartForLogical(g: GlobalOptions, ctx: ClusterContext): Promise<void> {
  if ((await walLevelOf(ctx, await primaryOf(ctx))) === 'logical') return;
  await runRestart(g, undefined, { switchover: ctx.spec.nodes.length > 1 });
  await runUp(g, {}, { create: true });
}

/** Waits until every table of every upgrade subscription is ready (copied and streaming), saying how far it is. */
async function waitCaughtUp(
  ctx: ClusterContext,
  primary: ClusterContext['spec']['nodes'][number],
  databases: readonly string[],
) {
  const deadline = ctx.clock.now() + CATCH_UP_TIMEOUT_MS;
  let said = '';
  for (;;) {
    let ready = 0;
    let total = 0;
    for (const [n, database] of databases.entries()) {
      const [row] = await sqlOnDatabase(ctx, primary, database, (s) =>
        s.query<{ ready: number; total: number }>(
          `SELECT count(*) FILTER (WHERE r.srsubstate = 'r')::int AS ready, count(*)::int AS total
             FROM pg_subscription_rel r JOIN pg_subscription x ON x.oid = r.srsubid WHERE x.subname = $1`,
          [upgradeSubscription(n + 1)],
        ),
      );
      ready += row?.ready ?? 0;
      total += row?.total ?? 0;
    }
    const line = `initial copy: ${ready} of ${total} tables ready`;
    if (line !== said) say(line);
    said = line;
    if (ready === total) return;
    if (ctx.clock.now() > deadline)
      throw new PgreplError(
        'E_TIMEOUT',
        `the initial copy is not done after ${CATCH_UP_TIMEOUT_MS / 3600000} h (${ready} of ${total} tables); it goes on: run \`pgrepl upgrade --cutover\` once \`pgrepl status -c ${ctx.spec.source}\` shows every table ready`,
      );
    await ctx.clock.sleep(200);
  }
}

/** The reverse subscription of database number `i`: the old cluster applies what the new one's clients write. */
const reverseSubscription = (rec: UpgradeRecord, i: number, database: string): SubscriptionSpec => ({
  name: rollbackSubscription(i),
  database,
  publication: UPGRADE_PUBLICATION,
  from: { kind: 'spec', path: rec.specFile },
  copyData: false,
  skipChecks: [],
});

/** The cutover: writes move to the new cluster, then the old one subscribes back until the upgrade is finished. */
async function cutover(
  g: GlobalOptions,
  ctx: ClusterContext,
  rec: UpgradeRecord,
  budgetMs: number,
  o: UpgradeOptions,
): Promise<number> {
  const next = await newContext(g, rec);
  const nextPrimary = await primaryOf(next);
  const onNext = (fn: (s: SqlSession, slot: string) => Promise<unknown>) =>
    Promise.all(
      rec.databases.map((database, n) =>
        sqlOnDatabase(next, nextPrimary, database, (s) => fn(s, rollbackSubscription(n + 1))),
      ),
    );
  await onNext(makeWayBackSlot).catch(async (err: unknown) => {
    await onNext(dropSlotIfIdle).catch(() => undefined);
    throw new PgreplError(
      'E_TIMEOUT',
      `the way back's slot on ${rec.cluster} could not be made within ${WAY_BACK_SLOT_TIMEOUT_S} s: it waits for the transactions open there to end (pg_stat_activity on its primary shows them); nothing was changed, run \`pgrepl upgrade --cutover\` again`,
      { cause: err },
    );
  });
  say(
    `cutover: ${ctx.spec.cluster} refuses writes until ${rec.cluster} has every commit (budget ${budgetMs} ms)`,
  );
  let moved: MoveResult;
  try {
    moved = await moveWrites(
      { ctx, liftExplicitly: false },
      { ctx: next, liftExplicitly: true },
      {
        databases: rec.databases,
        subscription: upgradeSubscription,
        budgetMs,
        beforeLift: (s, i) => skipToNow(s, rollbackSubscription(i)),
      },
    );
  } catch (err) {
    // Nothing moved: the way back's slots would only hold WAL on the new cluster.
    await onNext(dropSlotIfIdle).catch(() => undefined);
    throw err;
  }
  const done: UpgradeRecord = {
    ...rec,
    phase: 'cut-over',
    cutoverAt: new Date(ctx.clock.wallNow()).toISOString(),
    gapMs: Math.round(moved.gapMs),
  };
  writeUpgradeRecord(ctx.spec.stateDir, done);
  writeNewSpec(ctx, done, 'live');
  const oldPrimary = await primaryOf(ctx);
  // Neither a replica of the old cluster promoted later nor one of the new cluster may come up
  // refusing or taking writes against the cutover: the old ones refuse, the new ones take the
  // live spec (no default_transaction_read_only) through `up`.
  const unfenced = await matchReplicas(ctx, oldPrimary, true);
  await asStep(`${rec.cluster} without its refusal of writes`, () =>
    runUp({ ...g, config: rec.specFile }, {}, { create: true }),
  );
  for (const [n, database] of rec.databases.entries()) {
    await dropSubscription(next, ctx, database, upgradeSubscription(n + 1));
    await createSubscription(ctx, oldPrimary, reverseSubscription(rec, n + 1, database), {
      slot: rollbackSubscription(n + 1),
    });
  }
  const idle = await notStreaming(
    ctx,
    oldPrimary,
    rec.databases.map((_, n) => rollbackSubscription(n + 1)),
    10_000,
  );
  report(o, { phase: done.phase, ...moved, specFile: rec.specFile, wayBackIdle: idle, unfenced }, [
    ...describeMove(moved),
    ...(idle.length > 0
      ? [
          `the way back is not streaming yet (${idle.join(', ')}): \`pgrepl upgrade --rollback\` refuses until it does; see ${ctx.spec.cluster}'s server log`,
        ]
      : []),
    ...(unfenced.length > 0
      ? [
          `not reached: ${unfenced.join(', ')} of ${ctx.spec.cluster}; before starting one, run there: ALTER SYSTEM SET default_transaction_read_only = on`,
        ]
      : []),
    `${ctx.spec.cluster} refuses writes and applies ${rec.cluster}'s through ${rollbackSubscription(1)}${rec.databases.length > 1 ? '…' : ''}: \`pgrepl upgrade --rollback\` returns with every commit, \`pgrepl upgrade --finish\` ends it`,
  ]);
  return 0;
}

function describeMove(m: MoveResult): string[] {
  return [
    `writes moved from ${m.from} to ${m.to} in ${Math.round(m.gapMs)} ms (drain ${Math.round(m.drainMs)} ms to ${m.fenceLsn}, ${m.sequences} sequence${m.sequences === 1 ? '' : 's'} copied, ${m.sessionsEnded} session${m.sessionsEnded === 1 ? '' : 's'} ended)`,
    `  where the time went: fence ${m.phasesMs.fence} ms, ending sessions ${m.phasesMs.sessions} ms, drain ${m.phasesMs.drain} ms, sequences ${m.phasesMs.sequences} ms, hand-over ${m.phasesMs.handOver} ms, new primary taking writes ${m.phasesMs.lift} ms`,
  ];
}

/**
 * Undoes the upgrade: after the cutover, writes move back (the reverse subscription has every
 * commit made on the new cluster); before it, the subscriptions go. Then the new cluster is
 * destroyed, DDL allowed again and the upgrade's publications taken out of the spec.
 */
async function rollback(
  g: GlobalOptions,
  ctx: ClusterContext,
  rec: UpgradeRecord,
  budgetMs: number,
  o: UpgradeOptions,
): Promise<number> {
  if (rec.phase === 'finished')
    throw new PgreplError(
      'E_UPGRADE_STATE',
      `the upgrade to ${rec.cluster} is finished: there is no way back`,
    );
  let moved: MoveResult | null = null;
  const nextExists = existsSync(rec.specFile);
  if (rec.phase === 'cut-over') {
    const next = await newContext(g, rec);
    say(
      `rollback: ${rec.cluster} refuses writes until ${ctx.spec.cluster} has every commit (budget ${budgetMs} ms)`,
    );
    moved = await moveWrites(
      { ctx: next, liftExplicitly: true },
      { ctx, liftExplicitly: false },
      { databases: rec.databases, subscription: rollbackSubscription, budgetMs },
    );
    for (const [n, database] of rec.databases.entries())
      await dropSubscription(ctx, next, database, rollbackSubscription(n + 1));
    await matchReplicas(ctx, await primaryOf(ctx), false);
  } else if (nextExists) {
    const next = await newContext(g, rec);
    if (
      await primaryOf(next).then(
        () => true,
        () => false,
      )
    )
      for (const [n, database] of rec.databases.entries())
        await dropSubscription(next, ctx, database, upgradeSubscription(n + 1));
  }
  if (nextExists) {
    await asStep(`destroying ${rec.cluster}`, () =>
      runDestroy({ ...g, config: rec.specFile }, { yes: true }),
    );
    rmSync(rec.specFile, { force: true });
  }
  const primary = await primaryOf(ctx);
  for (const database of rec.databases)
    await sqlOnDatabase(ctx, primary, database, async (s) => {
      await unblockDdl(s);
      if (rec.addedPublications) await s.query(`DROP PUBLICATION IF EXISTS ${UPGRADE_PUBLICATION}`);
    });
  if (rec.addedPublications) removePublications(ctx.spec.source, UPGRADE_PUBLICATION);
  removeUpgradeRecord(ctx.spec.stateDir);
  report(o, { phase: 'rolled-back', ...(moved ?? {}) }, [
    ...(moved ? describeMove(moved) : []),
    `the upgrade is rolled back: ${ctx.spec.cluster} takes writes and DDL again; ${rec.cluster} is destroyed` +
      (rec.addedPublications ? `; wal_level stays logical until the next \`pgrepl up\` (a restart)` : ''),
  ]);
  return 0;
}

/** Ends the upgrade after the cutover: no way back, the old cluster stopped (its data kept). */
async function finish(
  g: GlobalOptions,
  ctx: ClusterContext,
  rec: UpgradeRecord,
  o: UpgradeOptions,
): Promise<number> {
  if (rec.phase !== 'cut-over')
    throw new PgreplError(
      'E_UPGRADE_STATE',
      rec.phase === 'finished'
        ? `the upgrade to ${rec.cluster} is finished already`
        : `the upgrade is ${rec.phase}: \`pgrepl upgrade --cutover\` comes first`,
    );
  const next = await newContext(g, rec);
  const nextPrimary = await primaryOf(next);
  for (const [n, database] of rec.databases.entries()) {
    await dropSubscription(ctx, next, database, rollbackSubscription(n + 1));
    await sqlOnDatabase(next, nextPrimary, database, (s) =>
      s.query(`DROP PUBLICATION IF EXISTS ${UPGRADE_PUBLICATION}`),
    );
  }
  writeNewSpec(ctx, rec, 'finished');
  await asStep(`stopping ${ctx.spec.cluster}`, () => runDown(g));
  writeUpgradeRecord(ctx.spec.stateDir, { ...rec, phase: 'finished' });
  report(o, { phase: 'finished', cluster: rec.cluster, specFile: rec.specFile }, [
    `the upgrade is finished: ${rec.cluster} (PostgreSQL ${rec.version}) is the cluster, its spec ${rec.specFile} (\`-c\` it, or make it your pgrepl.yaml)`,
    `${ctx.spec.cluster} is stopped with its data kept; \`pgrepl destroy --yes\` removes it`,
  ]);
  return 0;
}
