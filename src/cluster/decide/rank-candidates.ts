import { parseLsn } from '../../postgres/lsn.js';

/** What ranking needs to know about one replica that could be promoted. */
export interface Candidate {
  readonly name: string;
  /** Why it is not healthy (candidateProblem); null when it is. */
  readonly problem: string | null;
  /** How far its WAL goes: the furthest of received and replayed (replicaPosition). */
  readonly positionLsn: string | null;
  readonly replayLsn: string | null;
  /** Lower goes first among equally advanced ones: failoverPriority, then the spec's order (failoverCandidate). */
  readonly priority: number;
}

/** What the spec says of a node as a failover candidate. */
export interface CandidateRules {
  /** Higher goes first among equally advanced replicas; 0: never promoted. */
  readonly failoverPriority: number;
  /** Never promoted by the agents, nor by `--auto`. */
  readonly noFailover: boolean;
  /** Position in the spec: earlier nodes win what is left of a tie. */
  readonly specIndex: number;
}

/**
 * The one way a node becomes a failover candidate, for `promote`, `switchover` and the agents
 * alike: a node marked never to be promoted has that for its problem, then its own problem, then,
 * where a cap is given, a lag past it; among equals a higher failoverPriority goes first, then the
 * spec's order.
 */
export function failoverCandidate(o: {
  readonly name: string;
  readonly rules: CandidateRules;
  /** Why it cannot be promoted now, as its server says (candidateProblem, an agent's record). */
  readonly problem: string | null;
  readonly positionLsn: string | null;
  readonly replayLsn: string | null;
  /** Bytes behind the primary, and the most a candidate may be (maximumLagOnFailover). */
  readonly lag?: { readonly bytes: number | null; readonly cap: number };
}): Candidate {
  const never = o.rules.noFailover || o.rules.failoverPriority === 0;
  const lagged =
    o.lag && o.lag.bytes !== null && o.lag.bytes > o.lag.cap
      ? `it is ${o.lag.bytes} bytes behind the primary, more than maximumLagOnFailover ${o.lag.cap}`
      : null;
  return {
    name: o.name,
    problem: never
      ? 'it is marked never to be promoted (noFailover or failoverPriority 0)'
      : (o.problem ?? lagged),
    positionLsn: o.positionLsn,
    replayLsn: o.replayLsn,
    priority: -o.rules.failoverPriority * 10_000 + o.rules.specIndex,
  };
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
