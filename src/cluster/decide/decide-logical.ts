import type { PublicationSpec, SubscriptionSpec } from '../../cluster-spec/cluster-spec.js';
import type { LogicalAction, Step } from './plan-step.js';
import type { PreflightCode } from '../../cluster-spec/preflight-codes.js';
import type {
  DatabaseFacts,
  PublicationState,
  SubscriptionState,
  TableFacts,
} from '../../postgres/logical-queries.js';

/*
 * Logical replication's decisions: what the pre-flight check finds before a publication or a
 * subscription is made, and what `up` does to take the primary's publications and subscriptions to
 * the spec. Pure functions of what was read.
 */

export interface PreflightFinding {
  readonly code: PreflightCode;
  /** error: refused until fixed or skipped; warning: said, not refused. */
  readonly severity: 'error' | 'warning';
  /** The table, extension or database it concerns. */
  readonly subject: string;
  readonly message: string;
  /** What to do, as a command where there is one. */
  readonly fix: string;
}

const finding = (
  code: PreflightCode,
  severity: PreflightFinding['severity'],
  subject: string,
  message: string,
  fix: string,
): PreflightFinding => ({ code, severity, subject, message, fix });

/**
 * The publisher's side: every table exists and is an ordinary (or partitioned) logged table with a
 * replica identity — without one, the publisher itself refuses UPDATE and DELETE on the table once
 * it is published. Large objects and sequences are never replicated.
 */
export function preflightPublisher(
  requested: readonly string[] | 'all',
  tables: readonly TableFacts[],
  db: DatabaseFacts,
): PreflightFinding[] {
  const found: PreflightFinding[] = [];
  if (requested !== 'all')
    for (const t of requested.filter((r) => !tables.some((f) => f.table === r)))
      found.push(
        finding(
          'missing-table',
          'error',
          t,
          `${t} does not exist on the publisher`,
          `create it, or leave it out of tables:`,
        ),
      );
  for (const t of tables) {
    if (t.kind !== 'r' && t.kind !== 'p') {
      found.push(
        finding(
          'not-a-table',
          'error',
          t.table,
          `${t.table} is not a table (relkind ${t.kind}): it cannot be published`,
          'leave it out of tables:',
        ),
      );
      continue;
    }
    if (t.unlogged)
      found.push(
        finding(
          'unlogged',
          'error',
          t.table,
          `${t.table} is unlogged: its rows never reach the WAL, so none would be replicated`,
          `ALTER TABLE ${t.table} SET LOGGED`,
        ),
      );
    if (t.replicaIdentity === 'n' || (t.replicaIdentity === 'd' && !t.hasPrimaryKey))
      found.push(
        finding(
          'no-replica-identity',
          'error',
          t.table,
          `${t.table} has no primary key or replica identity: once published, UPDATE and DELETE on it fail on the publisher`,
          `ALTER TABLE ${t.table} ADD PRIMARY KEY (...), or ALTER TABLE ${t.table} REPLICA IDENTITY FULL (every column is sent; slower)`,
        ),
      );
  }
  if (db.largeObjects > 0)
    found.push(
      finding(
        'large-objects',
        'error',
        'pg_largeobject',
        `the database holds ${db.largeObjects} large object${db.largeObjects === 1 ? '' : 's'}: logical replication does not copy them`,
        'move them into bytea columns, or copy them apart (pg_dump --large-objects) and skip this check',
      ),
    );
  if (db.sequences.length > 0)
    found.push(
      finding(
        'sequences',
        'warning',
        db.sequences.join(', '),
        `${db.sequences.length} sequence${db.sequences.length === 1 ? ' is' : 's are'} not replicated: the subscriber's stay where they are`,
        'set them on the subscriber before it takes writes (`pgrepl upgrade` copies them at its cutover)',
      ),
    );
  return found;
}

/**
 * The subscriber's side, against the publisher's: every published table exists on the subscriber
 * with at least the publisher's columns, of the same types; the extensions the publisher uses are
 * installed; the same collation (an index built in another order may return other rows).
 */
export function preflightSubscriber(
  published: readonly TableFacts[],
  publisherDb: DatabaseFacts,
  local: readonly TableFacts[],
  localDb: DatabaseFacts,
): PreflightFinding[] {
  const found: PreflightFinding[] = [];
  for (const p of published) {
    const mine = local.find((t) => t.table === p.table);
    if (!mine) {
      found.push(
        finding(
          'missing-on-subscriber',
          'error',
          p.table,
          `${p.table} does not exist on the subscriber`,
          `create it there first, e.g. pg_dump --schema-only --table=${p.table} from the publisher into the subscriber`,
        ),
      );
      continue;
    }
    const missing = p.columns.filter((c) => !mine.columns.includes(c));
    if (missing.length > 0)
      found.push(
        finding(
          'column-mismatch',
          'error',
          p.table,
          `${p.table} on the subscriber lacks (or types differently) ${missing.join(', ')}`,
          `ALTER TABLE ${p.table} on the subscriber to match the publisher`,
        ),
      );
  }
  const absent = publisherDb.extensions.filter((e) => e !== 'plpgsql' && !localDb.extensions.includes(e));
  for (const e of absent)
    found.push(
      finding(
        'missing-extension',
        'error',
        e,
        `extension ${e} is installed on the publisher, not on the subscriber${localDb.availableExtensions.includes(e) ? '' : " (and the subscriber's server does not have its files)"}`,
        localDb.availableExtensions.includes(e)
          ? `CREATE EXTENSION ${e} on the subscriber`
          : `install the package with ${e} on the subscriber's hosts, then CREATE EXTENSION ${e}`,
      ),
    );
  if (
    publisherDb.collate !== localDb.collate ||
    publisherDb.ctype !== localDb.ctype ||
    publisherDb.localeProvider !== localDb.localeProvider
  )
    found.push(
      finding(
        'collation',
        'warning',
        'database',
        `the databases sort differently (publisher ${describeLocale(publisherDb)}, subscriber ${describeLocale(localDb)}): text indexes and ORDER BY may disagree`,
        'create the subscriber database with the publisher’s locale (initdb/CREATE DATABASE ... LOCALE), or accept the difference',
      ),
    );
  return found;
}

const describeLocale = (d: DatabaseFacts) =>
  `${d.localeProvider === 'i' ? 'ICU ' : ''}${d.collate}${d.ctype === d.collate ? '' : `/${d.ctype}`}`;

/** The findings that refuse: errors whose code the user did not skip. */
export function blockingFindings(
  found: readonly PreflightFinding[],
  skip: readonly PreflightCode[],
): PreflightFinding[] {
  return found.filter((f) => f.severity === 'error' && !skip.includes(f.code));
}

/** A `logical` step on `primary` for a publication or subscription of the spec. */
const logicalStep =
  (primary: string) =>
  (action: LogicalAction, x: { name: string; database: string }, reason: string): Step => ({
    kind: 'logical',
    node: primary,
    action,
    name: x.name,
    database: x.database,
    reason,
  });

/** What differs from the spec in one database's publications: steps on the primary, and what is left alone (with why). */
export function decidePublications(
  primary: string,
  wanted: readonly PublicationSpec[],
  present: readonly PublicationState[],
): { steps: Step[]; notes: string[] } {
  const steps: Step[] = [];
  const notes: string[] = [];
  const step = logicalStep(primary);
  for (const p of wanted) {
    const has = present.find((x) => x.name === p.name);
    if (!has) {
      steps.push(step('create-publication', p, `publication ${p.name} does not exist yet`));
      continue;
    }
    if (has.allTables !== (p.tables === 'all')) {
      notes.push(
        `publication ${p.name} is ${has.allTables ? 'for all tables' : 'for a list of tables'} and the spec says otherwise; PostgreSQL cannot change that in place: drop it (its subscribers stop) and run \`pgrepl up\``,
      );
      continue;
    }
    if (p.tables !== 'all' && [...p.tables].sort().join(',') !== has.tables.join(','))
      steps.push(
        step(
          'set-publication-tables',
          p,
          `publication ${p.name} has ${has.tables.join(', ') || 'no table'}; the spec says ${p.tables.join(', ')}`,
        ),
      );
  }
  return { steps, notes };
}

/** The same for one database's subscriptions: made when missing, pointed at the spec's publication. */
export function decideSubscriptions(
  primary: string,
  wanted: readonly SubscriptionSpec[],
  present: readonly SubscriptionState[],
  /** Per subscription, whether its slot is on the publisher's primary; absent: not read. */
  slotOnPublisher: ReadonlyMap<string, boolean> = new Map(),
): { steps: Step[]; notes: string[] } {
  const steps: Step[] = [];
  const notes: string[] = [];
  const step = logicalStep(primary);
  for (const sub of wanted) {
    const has = present.find((x) => x.name === sub.name);
    if (!has) {
      steps.push(step('create-subscription', sub, `subscription ${sub.name} does not exist yet`));
      continue;
    }
    // A publisher's failover or switchover before PostgreSQL 17 leaves the slot on the old
    // primary: what was committed between the promotion and a new slot would never arrive, so
    // the tables are copied again from a new slot.
    if (has.enabled && slotOnPublisher.get(sub.name) === false) {
      steps.push(
        step(
          'resync-subscription',
          sub,
          `subscription ${sub.name}'s slot ${has.slotName ?? sub.name} is not on the publisher's primary (a failover or switchover of the publisher loses it before PostgreSQL 17): its tables are emptied and copied again through a new slot`,
        ),
      );
      continue;
    }
    if (has.publications.join(',') !== sub.publication)
      steps.push(
        step(
          'set-subscription-publication',
          sub,
          `subscription ${sub.name} follows ${has.publications.join(', ')}; the spec says ${sub.publication}`,
        ),
      );
    if (!has.enabled)
      notes.push(`subscription ${sub.name} is disabled: ALTER SUBSCRIPTION ${sub.name} ENABLE resumes it`);
  }
  return { steps, notes };
}
