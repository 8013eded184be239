import { join } from 'node:path';
import { PgreplError } from '../../errors.js';
import type { NodeSpec, PublicationSpec, SubscriptionSpec } from '../../cluster-spec/cluster-spec.js';
import { loadSpec } from '../../cluster-spec/load-spec.js';
import { readDatabaseFacts, readLogicalSlots, readTableFacts } from '../../postgres/logical-queries.js';
import type { DatabaseFacts, LogicalSlotState, TableFacts } from '../../postgres/logical-queries.js';
import { writeOwnedFile } from '../../postgres/owned-paths.js';
import { renderPassfile } from '../../postgres/render-passfile.js';
import { quoteConninfo, verifyFullConninfo } from '../../postgres/render-postgresql-conf.js';
import { withSql } from '../../postgres/sql-client.js';
import { sqlIdent, sqlLiteral } from '../../postgres/sql-quote.js';
import type { SqlSession, SqlTarget } from '../../postgres/sql-client.js';
import { buildContext, trustedCaFile } from '../context/cluster-context.js';
import { sqlOnDatabase } from '../context/node-sql.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { resolveSecret } from '../context/resolve-secret.js';
import type { LogicalAction } from '../decide/plan-step.js';

/*
 * Logical replication's effects on a primary: publications (and the replication role's right to
 * read their tables), subscriptions (with the publisher's password in a passfile the server reads,
 * never in the catalog), and reading the publisher for the pre-flight check.
 */

/** A lower-case name the spec checked, as a quoted SQL identifier (schema.table as two). */
const ident = (name: string) => name.split('.').map(sqlIdent).join('.');
const literal = sqlLiteral;

const tableList = (p: PublicationSpec) =>
  p.tables === 'all' ? 'ALL TABLES' : `TABLE ${p.tables.map(ident).join(', ')}`;

/**
 * The replication role reads what it publishes: the initial copy of a subscription is a COPY of
 * each table as that role. Every table of the database for an all-tables publication.
 */
async function grantRead(s: SqlSession, p: PublicationSpec, role: string): Promise<void> {
  if (p.tables === 'all') {
    await s.query(`GRANT pg_read_all_data TO ${ident(role)}`);
    return;
  }
  const schemas = [...new Set(p.tables.map((t) => t.split('.')[0] as string))];
  await s.query(`GRANT USAGE ON SCHEMA ${schemas.map(ident).join(', ')} TO ${ident(role)}`);
  await s.query(`GRANT SELECT ON ${p.tables.map(ident).join(', ')} TO ${ident(role)}`);
}

/** Creates publication `p`, or sets its tables to the spec's, and lets the replication role read them. */
export async function applyPublication(
  ctx: ClusterContext,
  node: NodeSpec,
  p: PublicationSpec,
  how: 'create' | 'set-tables',
): Promise<void> {
  await sqlOnDatabase(ctx, node, p.database, async (s) => {
    await s.query(
      how === 'create'
        ? `CREATE PUBLICATION ${ident(p.name)} FOR ${tableList(p)}`
        : `ALTER PUBLICATION ${ident(p.name)} SET ${tableList(p)}`,
    );
    await grantRead(s, p, ctx.spec.replication.user);
  });
}

/** How a subscription reaches its publisher: every host (the primary is whichever accepts writes), as which role. */
export interface PublisherConnection {
  readonly hosts: readonly { readonly host: string; readonly port: number }[];
  readonly user: string;
  readonly database: string;
  readonly password: string;
  /** The CA the publisher's certificates are checked against; undefined: no TLS. */
  readonly caFile: string | undefined;
  /** How a user names it: the spec file or the URL without password. */
  readonly label: string;
}

/** The publisher of `sub`: another pgrepl cluster's nodes and replication role, or the URL's hosts. */
export async function publisherOf(ctx: ClusterContext, sub: SubscriptionSpec): Promise<PublisherConnection> {
  const from = sub.from;
  if (from.kind === 'url') {
    const password = resolveSecret(from.password, `subscription ${sub.name}'s publisher`, {
      env: ctx.processEnv,
      create: false,
      runAs: ctx.env.runAs,
    }) as string;
    return {
      hosts: from.hosts,
      user: from.user,
      database: from.database,
      password,
      caFile: undefined,
      label: `postgres://${from.user}@${from.hosts.map((h) => `${h.host}:${h.port}`).join(',')}/${from.database}`,
    };
  }
  const spec = await loadSpec({ file: from.path, cwd: ctx.spec.stateDir, env: ctx.processEnv });
  const other = await buildContext(spec, { runner: ctx.env.runner, env: ctx.processEnv });
  if (other.replicationPassword === undefined)
    throw new PgreplError(
      'E_LOGICAL_PUBLISHER',
      `subscription ${sub.name}: cluster ${spec.cluster} (${from.path}) has no replication password yet: run \`pgrepl up\` there first`,
    );
  const first = spec.nodes[0] as NodeSpec;
  return {
    hosts: spec.nodes.map((n) => ({ host: n.host, port: n.port })),
    user: spec.replication.user,
    database: sub.database,
    password: other.replicationPassword,
    caFile: trustedCaFile(other, first),
    label: `cluster ${spec.cluster} (${from.path})`,
  };
}

/** A connection to the publisher's primary as the subscription's role: the first host not in recovery. */
export async function onPublisher<T>(
  conn: PublisherConnection,
  fn: (s: SqlSession) => Promise<T>,
): Promise<T> {
  const failures: string[] = [];
  for (const h of conn.hosts) {
    const target: SqlTarget = {
      host: h.host,
      port: h.port,
      user: conn.user,
      password: conn.password,
      database: conn.database,
      label: `${h.host}:${h.port}`,
      ...(conn.caFile ? { tls: { caFile: conn.caFile, plainIfRefused: false } } : {}),
    };
    try {
      const primary = await withSql(target, async (s) => {
        const [row] = await s.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
        return row?.standby === false ? { value: await fn(s) } : null;
      });
      if (primary) return primary.value;
      failures.push(`${h.host}:${h.port} is a standby`);
    } catch (err) {
      failures.push(`${h.host}:${h.port}: ${(err as Error).message}`);
    }
  }
  throw new PgreplError(
    'E_LOGICAL_PUBLISHER',
    `no primary of ${conn.label} accepts ${conn.user} in database ${conn.database}: ${failures.join('; ')}`,
  );
}

/** Slot `name` on the primary of `sub`'s publisher; undefined when that primary has none. Throws when it cannot be read. */
export async function publisherSlot(
  ctx: ClusterContext,
  sub: SubscriptionSpec,
  name: string,
): Promise<LogicalSlotState | undefined> {
  return onPublisher(await publisherOf(ctx, sub), async (s) =>
    (await readLogicalSlots(s)).find((x) => x.name === name),
  );
}

/** The tables publication `name` publishes, read on the publisher with the facts the pre-flight check needs. */
export async function readPublished(
  conn: PublisherConnection,
  name: string,
): Promise<{ tables: TableFacts[]; db: DatabaseFacts }> {
  return onPublisher(conn, async (s) => {
    const rows = await s.query<{ t: string }>(
      `SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`,
      [name],
    );
    const [exists] = await s.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_publication WHERE pubname = $1',
      [name],
    );
    if (exists?.n !== 1)
      throw new PgreplError(
        'E_LOGICAL_PUBLISHER',
        `${conn.label} has no publication ${name} in database ${conn.database}: publish it there first (\`pgrepl logical publish ${name} ...\`)`,
      );
    return {
      tables: await readTableFacts(
        s,
        rows.map((r) => r.t),
      ),
      db: await readDatabaseFacts(s),
    };
  });
}

/** Where the subscriber's server reads the publisher's password: a passfile of its own in the state dir. */
export const subscriptionPassfile = (ctx: ClusterContext, sub: SubscriptionSpec) =>
  join(ctx.paths.secretsDir, `logical-${sub.database}-${sub.name}.pgpass`);

/**
 * The subscription's connection string: every publisher host, so that after a publisher failover
 * the apply worker connects to whichever accepts writes (target_session_attrs); the password in a
 * passfile, so the catalog (pg_subscription.subconninfo) never holds it.
 */
export function subscriptionConninfo(
  conn: PublisherConnection,
  passfile: string,
  sub: SubscriptionSpec,
): string {
  const pairs: [string, string][] = [
    ['host', conn.hosts.map((h) => h.host).join(',')],
    ['port', conn.hosts.map((h) => String(h.port)).join(',')],
    ['dbname', conn.database],
    ['user', conn.user],
    ['passfile', passfile],
    ['target_session_attrs', 'read-write'],
    ['application_name', sub.name],
    ['connect_timeout', '5'],
  ];
  return [...pairs.map(([k, v]) => `${k}=${quoteConninfo(v)}`), ...verifyFullConninfo(conn.caFile)].join(' ');
}

/**
 * Makes subscription `sub` on `node`. With `slot`, it streams from that slot, made beforehand on
 * the publisher (an upgrade's reverse subscription starts exactly at its cutover).
 */
export async function createSubscription(
  ctx: ClusterContext,
  node: NodeSpec,
  sub: SubscriptionSpec,
  o: { slot?: string } = {},
): Promise<void> {
  const conn = await publisherOf(ctx, sub);
  const passfile = subscriptionPassfile(ctx, sub);
  writeOwnedFile(
    passfile,
    renderPassfile(
      conn.hosts.map((h) => ({
        host: h.host,
        port: String(h.port),
        database: conn.database,
        user: conn.user,
        password: conn.password,
      })),
    ),
    0o600,
    ctx.env.runAs,
  );
  const slotName = o.slot ?? (await failoverSlot(conn, sub.name));
  const slot = slotName === undefined ? '' : `, create_slot = false, slot_name = ${literal(slotName)}`;
  await sqlOnDatabase(ctx, node, sub.database, (s) =>
    s.query(
      `CREATE SUBSCRIPTION ${ident(sub.name)} CONNECTION ${literal(subscriptionConninfo(conn, passfile, sub))} ` +
        `PUBLICATION ${ident(sub.publication)} WITH (copy_data = ${sub.copyData}, synchronous_commit = 'on'${slot})`,
    ),
  );
}

/**
 * On a PostgreSQL 17 or later publisher, the subscription's slot made beforehand with `failover =
 * true`, so that the publisher's standbys synchronize it and a failover or switchover keeps it
 * (any subscriber version can use it; CREATE SUBSCRIPTION's own `failover` needs a 17 subscriber).
 * Its name, or undefined on an older publisher, where the subscription makes its own slot.
 */
async function failoverSlot(conn: PublisherConnection, name: string): Promise<string | undefined> {
  return onPublisher(conn, async (s) => {
    const [v] = await s.query<{ n: number }>("SELECT current_setting('server_version_num')::int AS n");
    if ((v?.n ?? 0) < 170000) return undefined;
    const [has] = await s.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1',
      [name],
    );
    if (has?.n !== 1)
      await s.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)", [name]);
    return name;
  });
}

export async function setSubscriptionPublication(
  ctx: ClusterContext,
  node: NodeSpec,
  sub: SubscriptionSpec,
): Promise<void> {
  await sqlOnDatabase(ctx, node, sub.database, (s) =>
    s.query(`ALTER SUBSCRIPTION ${ident(sub.name)} SET PUBLICATION ${ident(sub.publication)}`),
  );
}

/**
 * Copies a subscription's tables afresh through a new slot: its own is gone from the publisher's
 * primary. The subscription is dropped without touching the publisher (its slot is not there),
 * its tables emptied, and it is made again with the spec's options. Readers of those tables see
 * them empty until their copy ends.
 */
export async function resyncSubscription(
  ctx: ClusterContext,
  node: NodeSpec,
  sub: SubscriptionSpec,
): Promise<void> {
  await sqlOnDatabase(ctx, node, sub.database, async (s) => {
    const tables = await s.query<{ t: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_subscription_rel r
         JOIN pg_subscription x ON x.oid = r.srsubid JOIN pg_class c ON c.oid = r.srrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE x.subname = $1`,
      [sub.name],
    );
    await dropLeavingSlot(s, sub.name);
    if (tables.length > 0) await s.query(`TRUNCATE ${tables.map((r) => r.t).join(', ')}`);
  });
  await createSubscription(ctx, node, { ...sub, copyData: true });
}

/**
 * Drops subscription `name` of this session's database without connecting to its publisher
 * (DROP SUBSCRIPTION would, to drop the slot, and needs it reachable and taking writes): its slot
 * there is the caller's to drop, or already gone.
 */
export async function dropLeavingSlot(s: SqlSession, name: string): Promise<void> {
  await s.query(`ALTER SUBSCRIPTION ${ident(name)} DISABLE`);
  await s.query(`ALTER SUBSCRIPTION ${ident(name)} SET (slot_name = NONE)`);
  await s.query(`DROP SUBSCRIPTION ${ident(name)}`);
}

/** Performs a `logical` step of a plan on the spec's publication or subscription it names. */
export async function runLogicalStep(
  ctx: ClusterContext,
  node: NodeSpec,
  step: LogicalStepRef,
): Promise<void> {
  const { publications, subscriptions } = ctx.spec.logical;
  const pub = publications.find((p) => p.name === step.name && p.database === step.database);
  const sub = subscriptions.find((x) => x.name === step.name && x.database === step.database);
  const missing = () =>
    new PgreplError(
      'E_INTERNAL',
      `the plan names ${step.name} in ${step.database}, which the spec does not have`,
    );
  switch (step.action) {
    case 'create-publication':
      if (!pub) throw missing();
      return applyPublication(ctx, node, pub, 'create');
    case 'set-publication-tables':
      if (!pub) throw missing();
      return applyPublication(ctx, node, pub, 'set-tables');
    case 'create-subscription':
      if (!sub) throw missing();
      return createSubscription(ctx, node, sub);
    case 'set-subscription-publication':
      if (!sub) throw missing();
      return setSubscriptionPublication(ctx, node, sub);
    case 'resync-subscription':
      if (!sub) throw missing();
      return resyncSubscription(ctx, node, sub);
  }
}

/** What a `logical` step names. */
export interface LogicalStepRef {
  readonly action: LogicalAction;
  readonly name: string;
  readonly database: string;
}
