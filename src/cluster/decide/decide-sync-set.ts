import type { LeaderSyncSet, RecordedSyncSet, SyncSet } from '../../dcs/ha-values.js';
import { parseLsn } from '../../postgres/lsn.js';

/**
 * The set a candidate is judged by: the recorded one, or, while its leader has let no standby
 * follow it (RecordedSyncSet.replaces), the one it replaced.
 */
export function syncSetInForce(recorded: RecordedSyncSet | null): LeaderSyncSet | null {
  if (recorded === null) return null;
  const set = recorded.replaces === undefined ? recorded : recorded.replaces;
  return set === null ? null : withoutReplaces(set);
}

/** The set alone, its leader kept, without what a pending record keeps of the one it replaced. */
function withoutReplaces({ count, standbys, leader }: LeaderSyncSet): LeaderSyncSet {
  return leader === undefined ? { count, standbys } : { count, standbys, leader };
}

/**
 * What a new leader's announcement puts in force: the set it recorded pending with its key
 * (`pending`, when this agent did), or, after a restart of its agent, its own pending record as
 * read (`read`); null when nothing it recorded is pending.
 */
export function syncSetToSettle(
  pending: LeaderSyncSet | null,
  read: RecordedSyncSet | null,
): LeaderSyncSet | null {
  if (pending !== null) return pending;
  return read?.replaces === undefined ? null : withoutReplaces(read);
}

/**
 * What a leader records with its key before its server is promoted, when no standby may follow it
 * yet: `set`, with the set in force in what it read kept as the one that still holds.
 */
export const pendingSyncSet = (set: LeaderSyncSet, read: RecordedSyncSet | null): RecordedSyncSet => ({
  ...set,
  replaces: syncSetInForce(read),
});

export type SyncSetChange =
  | { readonly kind: 'keep'; readonly reason: string }
  /** Write `set` into etcd now (the desired set, or a bridge on the way to it). */
  | { readonly kind: 'record'; readonly set: SyncSet; readonly reason: string }
  | { readonly kind: 'wait'; readonly reason: string };

/**
 * Whether a failover judged by `record` finds every commit that a server running `setting`
 * acknowledges. A candidate needs n − count + 1 of `record.standbys`, itself included, at or behind
 * it (syncProblem); a commit is acknowledged by `setting.count` of `setting.standbys` (ANY k; FIRST
 * k acknowledges through one of those sets too). The record is safe when every confirming set meets
 * every acknowledging set. The confirming set that meets the setting's standbys least takes every
 * standby outside them first; an acknowledging set misses it when `count` standbys of the setting
 * lie outside it.
 */
export function asksAtLeastAsMuch(record: SyncSet, setting: SyncSet): boolean {
  const confirming = record.standbys.length - record.count + 1;
  const outside = record.standbys.filter((n) => !setting.standbys.includes(n)).length;
  const inside = Math.max(0, confirming - outside);
  return setting.standbys.length - inside < setting.count;
}

/**
 * What to record while a change goes from `from` to `to` when neither record covers the other's
 * setting (a standby replaced by another, say): both sets together, with the highest count that
 * still covers both settings (count 1 always does: every standby must then confirm).
 */
export function bridgeSyncSet(from: SyncSet, to: SyncSet): SyncSet {
  const standbys = [...new Set([...from.standbys, ...to.standbys])].sort();
  for (let count = standbys.length; count > 1; count--) {
    const set = { count, standbys };
    if (asksAtLeastAsMuch(set, from) && asksAtLeastAsMuch(set, to)) return set;
  }
  return { count: 1, standbys };
}

/** The same count over the same standbys, in whatever order. */
export const sameSyncSet = (a: SyncSet, b: SyncSet) =>
  a.count === b.count &&
  a.standbys.length === b.standbys.length &&
  b.standbys.every((n) => a.standbys.includes(n));

const show = (s: SyncSet) => `${s.count} of ${s.standbys.join(', ') || 'none'}`;

/**
 * What the leader records of the synchronous set while its server goes from the recorded setting to
 * `desired` (a spec change: a node added or removed, a new count). The rule (HA-NOTES): what etcd
 * records must always ask at least as much of a candidate as the setting in force. Under the quorum
 * rule a wider set or a *lower* count asks more, a narrower set or a *higher* count asks less; a set
 * and a count that change together are judged as one, by asksAtLeastAsMuch.
 *
 * - `takenAt` null: the server is about to be told. A desired set that asks at least as much as the
 *   recorded one is recorded first; one that asks less waits for the server; one that neither covers
 *   nor is covered by the record is bridged (both sets, a count that covers both) first.
 * - `takenAt` set: the server runs `desired` since that WAL position. A desired set that asks less
 *   than the recorded one is recorded once `desired.count` of its standbys have flushed past it: every commit acknowledged under the
 *   setting before is then held by `count` of the new set, and the quorum rule over it finds them.
 */
export function decideSyncSet(o: {
  readonly recorded: SyncSet | null;
  readonly desired: SyncSet;
  /** The leader's WAL position once its server ran `desired`; null before the server is told. */
  readonly takenAt: string | null;
  /** Each streaming standby's flush position, from pg_stat_replication. */
  readonly flushed: ReadonlyMap<string, string | null>;
}): SyncSetChange {
  const { recorded, desired } = o;
  if (recorded === null)
    return { kind: 'record', set: desired, reason: 'nothing recorded yet: any set asks more than none' };
  if (sameSyncSet(recorded, desired))
    return { kind: 'keep', reason: 'the recorded synchronous standbys are those of the spec' };
  if (o.takenAt === null) {
    if (asksAtLeastAsMuch(desired, recorded))
      return {
        kind: 'record',
        set: desired,
        reason: `${show(desired)} asks at least as much of a candidate as ${show(recorded)}: recorded before the server runs it`,
      };
    if (asksAtLeastAsMuch(recorded, desired))
      return {
        kind: 'wait',
        reason: `${show(desired)} asks less of a candidate than ${show(recorded)}: recorded once the server runs it and enough standbys flushed past that point`,
      };
    const bridge = bridgeSyncSet(recorded, desired);
    return {
      kind: 'record',
      set: bridge,
      reason: `neither ${show(recorded)} nor ${show(desired)} covers the other: ${show(bridge)} covers both until the server runs the new set`,
    };
  }
  // The recorded set was what the server ran before: a desired one that asks at least as much as it
  // (its record before the server was told failed, say) is safe at once.
  if (asksAtLeastAsMuch(desired, recorded))
    return {
      kind: 'record',
      set: desired,
      reason: `${show(desired)} asks at least as much of a candidate as ${show(recorded)}`,
    };
  const at = parseLsn(o.takenAt);
  const past = desired.standbys.filter((n) => {
    const lsn = o.flushed.get(n);
    return lsn !== undefined && lsn !== null && parseLsn(lsn) >= at;
  });
  if (past.length >= desired.count)
    return {
      kind: 'record',
      set: desired,
      reason: `${past.join(', ')} flushed past ${o.takenAt}: every commit acknowledged before is held by ${desired.count} of ${desired.standbys.join(', ')}`,
    };
  return {
    kind: 'wait',
    reason: `only ${past.length} of the ${desired.count} standbys needed flushed past ${o.takenAt}; the recorded set stays ${show(recorded)}`,
  };
}
