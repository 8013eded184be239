/**
 * Whether the agent's watch on etcd still delivers. A watch on a half-open connection (a member
 * gone without a FIN, a NAT that forgot the flow) delivers nothing and never fails; the loop's
 * own reads see every change under the root. So a watch is stale once a read has shown a change
 * past what it delivered for longer than `limitMs` (a live watch delivers within milliseconds).
 */
export function watchStaleness(o: {
  /** The newest change (mod revision) under the cluster's root that the last read saw. */
  readonly readRevision: number;
  /** The newest change the watch delivered, or the revision it started after. */
  readonly deliveredRevision: number;
  /** Since when reads have been ahead of the watch; null when they were not. */
  readonly behindSince: number | null;
  readonly now: number;
  readonly limitMs: number;
}): { readonly behindSince: number | null; readonly stale: boolean } {
  if (o.readRevision <= o.deliveredRevision) return { behindSince: null, stale: false };
  const since = o.behindSince ?? o.now;
  return { behindSince: since, stale: o.now - since > o.limitMs };
}
