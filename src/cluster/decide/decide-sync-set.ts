import { parseLsn } from '../../postgres/lsn.js';

/** The standbys that may hold an acknowledged commit, as the leader records them in etcd. */
export interface SyncSet {
  readonly count: number;
  readonly standbys: readonly string[];
}

export type SyncSetChange =
  | { readonly kind: 'keep'; readonly reason: string }
  | { readonly kind: 'record'; readonly reason: string }
  | { readonly kind: 'wait'; readonly reason: string };

/**
 * Whether the leader may record `desired` (what its spec renders now) in place of `recorded`. A
 * wider set is recorded at once: it only asks more of a candidate. A narrower one (a node removed)
 * only once `count` of its standbys have flushed past `narrowedAt`, the leader's position when it
 * took the new spec: a commit acknowledged before then by a node that is now gone is then held by
 * `count` of the new set too, so the quorum rule over the new set still finds every acknowledged commit.
 */
export function decideSyncSet(o: {
  readonly recorded: SyncSet | null;
  readonly desired: SyncSet;
  readonly narrowedAt: string | null;
  /** Each streaming standby's flush position, from pg_stat_replication. */
  readonly flushed: ReadonlyMap<string, string | null>;
}): SyncSetChange {
  const { recorded, desired } = o;
  if (
    recorded &&
    recorded.count === desired.count &&
    recorded.standbys.length === desired.standbys.length &&
    desired.standbys.every((n) => recorded.standbys.includes(n))
  )
    return { kind: 'keep', reason: 'the recorded synchronous standbys are those of the spec' };
  const narrower =
    recorded !== null &&
    desired.count <= recorded.count &&
    desired.standbys.every((n) => recorded.standbys.includes(n));
  if (!narrower)
    return { kind: 'record', reason: 'a wider set of synchronous standbys asks more of a candidate' };
  if (o.narrowedAt === null)
    return { kind: 'wait', reason: 'the narrower set waits for the position the leader took it at' };
  const at = parseLsn(o.narrowedAt);
  const past = desired.standbys.filter((n) => {
    const lsn = o.flushed.get(n);
    return lsn !== undefined && lsn !== null && parseLsn(lsn) >= at;
  });
  if (past.length >= desired.count)
    return {
      kind: 'record',
      reason: `${past.join(', ')} flushed past ${o.narrowedAt}: every commit acknowledged before is held by ${desired.count} of ${desired.standbys.join(', ')}`,
    };
  return {
    kind: 'wait',
    reason: `only ${past.length} of the ${desired.count} standbys needed flushed past ${o.narrowedAt}; the recorded set stays ${recorded.standbys.join(', ')}`,
  };
}
