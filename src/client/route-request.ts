/**
 * Where one request goes: a pure function of what the pool knows of the cluster and what the
 * request needs, returning the node and the reason (the pool logs it and counts it).
 */

/** One server as the pool's last refresh saw it. */
export interface NodeView {
  /** host:port, as the pool was given it. */
  readonly name: string;
  /** unknown: it did not answer its last probe, or its last answer no longer counts (a failed write). */
  readonly role: 'primary' | 'replica' | 'unknown';
  /** A replica's replayed position; null elsewhere. */
  readonly replayLsn: bigint | null;
  /** A replica's lag behind the primary when it was probed (replica-lag.ts); null: not known. */
  readonly lagBytes: number | null;
  readonly lagMs: number | null;
  /** Queries the pool has sent it that have not finished. */
  readonly outstanding: number;
}

export interface ReadNeeds {
  readonly maxLagMs: number;
  readonly maxLagBytes: number;
  /** Any replica that answers will do when no fresh one and no primary does. */
  readonly allowStale: boolean;
  /** Read-your-writes: only a node that replayed this position (or the primary). */
  readonly after: bigint | null;
}

export type RouteRequest = { readonly kind: 'write' } | ({ readonly kind: 'read' } & ReadNeeds);

export type Route =
  | {
      readonly kind: 'node';
      readonly node: string;
      /**
       * The position the node must be seen to have replayed, on the connection the query then
       * uses, before it runs there (read-your-writes on a replica); null: none to check.
       */
      readonly replayed: bigint | null;
      readonly reason: string;
    }
  | { readonly kind: 'wait'; readonly reason: string };

/** Least outstanding first; `turn` picks among equals, so that equal replicas share the load. */
function leastBusy(nodes: readonly NodeView[], turn: number): NodeView | undefined {
  const least = Math.min(...nodes.map((n) => n.outstanding));
  const equal = nodes.filter((n) => n.outstanding === least);
  return equal[turn % equal.length];
}

const fresh = (n: NodeView, r: ReadNeeds) =>
  n.lagBytes !== null && n.lagMs !== null && n.lagBytes <= r.maxLagBytes && n.lagMs <= r.maxLagMs;

/**
 * Writes go to the primary. Reads go to a replica within the lag bounds (with `after`: one that
 * replayed it, or one within the bounds that may yet, checked on its connection), the least busy;
 * else to the primary; else, with allowStale, to any replica that answers. Nothing known: wait.
 */
export function routeRequest(nodes: readonly NodeView[], req: RouteRequest, turn = 0): Route {
  const primary = nodes.find((n) => n.role === 'primary');
  const toPrimary = (why: string): Route =>
    primary
      ? { kind: 'node', node: primary.name, replayed: null, reason: `${why}: the primary ${primary.name}` }
      : { kind: 'wait', reason: `${why}, and no primary known: waiting for one` };
  if (req.kind === 'write') return toPrimary('a write');
  const replicas = nodes.filter((n) => n.role === 'replica');
  const within = replicas.filter((n) => fresh(n, req));
  if (req.after !== null) {
    const after = req.after;
    const caughtUp = within.filter((n) => n.replayLsn !== null && n.replayLsn >= after);
    const pick = leastBusy(caughtUp.length > 0 ? caughtUp : within, turn);
    if (pick)
      return {
        kind: 'node',
        node: pick.name,
        replayed: after,
        reason:
          caughtUp.length > 0
            ? `a read after ${lsnText(after)}: ${pick.name} replayed it (${pick.outstanding} outstanding)`
            : `a read after ${lsnText(after)}: ${pick.name} is within the lag bounds and may replay it in time`,
      };
    return toPrimary(`a read after ${lsnText(after)}, no replica within the lag bounds`);
  }
  const pick = leastBusy(within, turn);
  if (pick)
    return {
      kind: 'node',
      node: pick.name,
      replayed: null,
      reason: `a read: ${pick.name} is ${pick.lagBytes} bytes and ${pick.lagMs} ms behind (${pick.outstanding} outstanding)`,
    };
  if (primary) return toPrimary('a read, no replica within the lag bounds');
  const stale = req.allowStale ? leastBusy(replicas, turn) : undefined;
  if (stale)
    return {
      kind: 'node',
      node: stale.name,
      replayed: null,
      reason: `a read, no fresh replica and no primary: ${stale.name}, stale, as allowStale permits`,
    };
  return toPrimary('a read, no replica within the lag bounds');
}

/** An LSN as PostgreSQL prints it. */
export function lsnText(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}
