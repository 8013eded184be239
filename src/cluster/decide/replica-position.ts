import { parseLsn } from '../../postgres/lsn.js';
import type { InstanceState } from '../../postgres/instance-queries.js';

/**
 * How far a replica's WAL goes: the furthest of what it received and what it replayed. Right after
 * its WAL receiver starts (a restart, a rejoin, a re-point) and before new WAL arrives,
 * pg_last_wal_receive_lsn() is the segment boundary where streaming began, behind what the replica
 * already replayed from its own pg_wal; taking that as its position would rank a caught-up replica
 * as behind. Status, ranking, refusals and waits all use this one function.
 */
export function replicaPosition(i: Pick<InstanceState, 'receiveLsn' | 'replayLsn'>): string | null {
  if (i.receiveLsn === null) return i.replayLsn;
  if (i.replayLsn === null) return i.receiveLsn;
  return parseLsn(i.replayLsn) > parseLsn(i.receiveLsn) ? i.replayLsn : i.receiveLsn;
}
