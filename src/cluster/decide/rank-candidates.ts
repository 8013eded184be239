import { parseLsn } from '../../postgres/lsn.js';

/** What ranking needs to know about one replica that could be promoted. */
export interface Candidate {
  readonly name: string;
  /** Why it is not healthy (candidateProblem); null when it is. */
  readonly problem: string | null;
  /** How far its WAL goes: the furthest of received and replayed (replicaPosition). */
  readonly positionLsn: string | null;
  readonly replayLsn: string | null;
  /** Position in the spec: earlier nodes win ties. */
  readonly priority: number;
}

/** A WAL position for comparing; an unknown one ranks below every known one. */
export const comparableLsn = (l: string | null): bigint => (l === null ? -1n : parseLsn(l));

/**
 * The one comparator that orders failover candidates, best first: healthy before unhealthy, then
 * the most WAL held (least lost), then the most replayed (fastest to promote), then the
 * spec's order, then the name, so the order is total and every caller agrees on it.
 */
export function compareCandidates(a: Candidate, b: Candidate): number {
  if ((a.problem === null) !== (b.problem === null)) return a.problem === null ? -1 : 1;
  const held = comparableLsn(b.positionLsn) - comparableLsn(a.positionLsn);
  if (held !== 0n) return held > 0n ? 1 : -1;
  const replayed = comparableLsn(b.replayLsn) - comparableLsn(a.replayLsn);
  if (replayed !== 0n) return replayed > 0n ? 1 : -1;
  if (a.priority !== b.priority) return a.priority - b.priority;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Candidates best first. */
export function rankCandidates(candidates: readonly Candidate[]): Candidate[] {
  return [...candidates].sort(compareCandidates);
}
