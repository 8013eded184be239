import { findNode, logicalDatabases } from '../../cluster-spec/cluster-spec.js';
import { publisherSlot } from '../actions/logical-actions.js';
import { sqlOnDatabase } from '../context/node-sql.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { readLogicalSlots, readPublications, readSubscriptions } from '../../postgres/logical-queries.js';
import type { LogicalSlotState, SubscribedTable } from '../../postgres/logical-queries.js';

/** The spec's publications and subscriptions as the primary has them (`status --json`'s `logical`). */
export interface LogicalStatus {
  readonly publications: readonly {
    readonly name: string;
    readonly database: string;
    /** null: the primary has no such publication (yet). */
    readonly tables: number | 'all' | null;
  }[];
  /** The logical slots of those databases on the primary: one per subscriber. */
  readonly slots: readonly LogicalSlotState[];
  readonly subscriptions: readonly {
    readonly name: string;
    readonly database: string;
    readonly publication: string;
    /** missing: not made yet; disabled; down: enabled with no apply worker (see the server log); streaming. */
    readonly state: 'missing' | 'disabled' | 'down' | 'streaming';
    /** Tables by copy state: ready ones stream; the others are in their initial copy. */
    readonly tables: Readonly<Record<SubscribedTable['state'], number>>;
    readonly copying: readonly string[];
    readonly lastMessageAgeSeconds: number | null;
    /** What the publisher's slot for it holds: bytes not yet confirmed, WAL kept. null: not read. */
    readonly lagBytes: number | null;
    readonly retainedBytes: number | null;
    /** The publisher's primary was read and has no slot for it (lost in a publisher failover): `up` re-syncs it. */
    readonly slotMissing: boolean;
  }[];
  /** Databases or publishers that could not be read, with why. */
  readonly errors: readonly string[];
}

/** Reads it on `primary`; null without a `logical:` section. Nothing read is thrown: it is said in `errors`. */
export async function readLogicalStatus(
  ctx: ClusterContext,
  primary: string | null,
): Promise<LogicalStatus | null> {
  const { publications, subscriptions } = ctx.spec.logical;
  if (publications.length + subscriptions.length === 0) return null;
  const node = primary === null ? undefined : findNode(ctx.spec, primary);
  const out: {
    publications: LogicalStatus['publications'][number][];
    slots: LogicalSlotState[];
    subscriptions: LogicalStatus['subscriptions'][number][];
    errors: string[];
  } = {
    publications: [],
    slots: [],
    subscriptions: [],
    errors: [],
  };
  if (!node) return { ...out, errors: ['no primary runs'] };
  for (const database of logicalDatabases(ctx.spec.logical)) {
    try {
      const read = await sqlOnDatabase(ctx, node, database, async (s) => ({
        publications: await readPublications(s),
        slots: await readLogicalSlots(s),
        subscriptions: await readSubscriptions(s),
      }));
      for (const p of publications.filter((x) => x.database === database)) {
        const has = read.publications.find((x) => x.name === p.name);
        out.publications.push({
          name: p.name,
          database,
          tables: has ? (has.allTables ? 'all' : has.tables.length) : null,
        });
      }
      if (publications.some((x) => x.database === database))
        out.slots.push(...read.slots.filter((x) => x.database === database));
      for (const sub of subscriptions.filter((x) => x.database === database)) {
        const has = read.subscriptions.find((x) => x.name === sub.name);
        const tables = { i: 0, d: 0, f: 0, s: 0, r: 0 };
        for (const t of has?.tables ?? []) tables[t.state] += 1;
        let slot: LogicalSlotState | undefined;
        let slotMissing = false;
        if (has?.slotName) {
          try {
            slot = await publisherSlot(ctx, sub, has.slotName);
            slotMissing = slot === undefined;
          } catch (err) {
            out.errors.push(`subscription ${sub.name}'s publisher: ${(err as Error).message}`);
          }
        }
        out.subscriptions.push({
          name: sub.name,
          database,
          publication: sub.publication,
          state: !has ? 'missing' : !has.enabled ? 'disabled' : has.workerRunning ? 'streaming' : 'down',
          tables,
          copying: (has?.tables ?? []).filter((t) => t.state !== 'r').map((t) => `${t.table} (${t.state})`),
          lastMessageAgeSeconds: has?.lastMessageAgeSeconds ?? null,
          lagBytes: slot?.lagBytes ?? null,
          retainedBytes: slot?.retainedBytes ?? null,
          slotMissing,
        });
      }
    } catch (err) {
      out.errors.push(`database ${database} on ${node.name}: ${(err as Error).message}`);
    }
  }
  return out;
}
