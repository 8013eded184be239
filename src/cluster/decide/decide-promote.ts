import type { ClusterSpec } from '../../cluster-spec/cluster-spec.js';
import { candidateProblem } from './candidate-health.js';
import { localDir, roleOf } from '../observe/observation.js';
import type { ClusterObservation } from '../observe/observation.js';
import { comparableLsn, failoverCandidate, rankCandidates } from './rank-candidates.js';
import type { Candidate } from './rank-candidates.js';
import { replicaPosition } from './replica-position.js';
import { topologyGuard } from './topology-guard.js';
import type { GuardRefusal } from './topology-guard.js';

export interface PromoteRequest {
  /** The node to promote; undefined with `auto`. */
  readonly target: string | undefined;
  readonly auto: boolean;
  /** Fence (stop) a primary that still answers, then promote. */
  readonly force: boolean;
}

/** Why a promotion is refused: each refusal has its own code, for scripts and the agent. */
export type PromoteRefusal =
  | 'E_PRIMARY_RUNNING'
  | 'E_PRIMARY_UNREACHABLE'
  | 'E_SYNC_UNCONFIRMED'
  | 'E_UNKNOWN_NODE'
  | 'E_NOT_A_REPLICA'
  | 'E_BEHIND'
  | 'E_UNHEALTHY'
  | 'E_NO_CANDIDATE'
  | GuardRefusal['code'];

export type PromoteDecision =
  | { kind: 'refuse'; code: PromoteRefusal; reason: string }
  | {
      kind: 'promote';
      target: string;
      /** The primary being replaced, if any node is one. */
      oldPrimary: string | null;
      /** The old primary still runs and must be stopped before the promotion. */
      fence: boolean;
      /** Running replicas to re-point at the new primary. */
      followers: string[];
      /** Every candidate, best first, with why it is not healthy: the table `promote` prints. */
      candidates: Candidate[];
      reason: string;
    };

/**
 * Replicas that answer, as failover candidates: how far their WAL goes, and whether they may be
 * promoted (failoverCandidate: the spec's never-promote marks and failoverPriority, as the agents).
 */
export function candidatesOf(spec: ClusterSpec, obs: ClusterObservation): Candidate[] {
  return obs.nodes
    .filter((o) => roleOf(o) === 'replica')
    .map((o) => {
      const instance = o.server?.ok ? o.server.instance : undefined;
      return failoverCandidate({
        name: o.node.name,
        rules: { ...o.node, specIndex: spec.nodes.findIndex((n) => n.name === o.node.name) },
        problem: candidateProblem(o, obs),
        positionLsn: instance ? replicaPosition(instance) : null,
        replayLsn: instance?.replayLsn ?? null,
      });
    });
}

/**
 * Decides an unplanned failover. Pure: refuses with a reason rather than risk two primaries (a
 * primary that answers is fenced only with --force) or lost commits (a named replica that received
 * less than another is refused without --force).
 */
export function decidePromote(
  spec: ClusterSpec,
  obs: ClusterObservation,
  req: PromoteRequest,
): PromoteDecision {
  // Not even --force passes this: fencing stops the server of a data directory on this machine.
  const guard = topologyGuard(obs, { actsOn: 'all' });
  if (guard) return { kind: 'refuse', ...guard };
  const writable = obs.nodes.filter((o) => roleOf(o) === 'primary');
  const old =
    writable[0] ??
    obs.nodes.find((o) => {
      const dir = localDir(o);
      return dir !== null && !dir.standbySignal && dir.initialized && !o.fenced;
    });
  const oldRunning = old !== undefined && old.server !== null;
  if (old && roleOf(old) === 'primary' && !req.force) {
    return {
      kind: 'refuse',
      code: 'E_PRIMARY_RUNNING',
      reason:
        `${old.node.name} is the primary and accepts writes. For a planned change use ` +
        `\`pgrepl switchover${req.target ? ` --to ${req.target}` : ''}\` (no commit lost); to stop ${old.node.name} and promote anyway, add --force`,
    };
  }
  if (old && roleOf(old) === 'unreachable' && !req.force) {
    return {
      kind: 'refuse',
      code: 'E_PRIMARY_UNREACHABLE',
      reason: `${old.node.name} still runs but does not answer; it must be stopped first: add --force to stop it`,
    };
  }
  const ranked = rankCandidates(candidatesOf(spec, obs));
  const best = ranked[0];
  // In sync/quorum mode each acknowledged commit is on at least syncCount replicas. While fewer
  // than that are out of reach, one reachable replica has them all, and the most advanced one does.
  if (spec.replication.mode !== 'async' && !req.force) {
    const unreachable = obs.nodes.filter(
      (o) =>
        o !== old && roleOf(o) !== 'replica' && roleOf(o) !== 'primary' && localDir(o)?.initialized === true,
    );
    if (unreachable.length >= spec.replication.syncCount) {
      return {
        kind: 'refuse',
        code: 'E_SYNC_UNCONFIRMED',
        reason:
          `in ${spec.replication.mode} mode each acknowledged commit is on ${spec.replication.syncCount} replica(s), and ` +
          `${unreachable.map((o) => o.node.name).join(', ')} cannot be asked: the reachable ones may lack acknowledged commits. ` +
          'Bring one back, or add --force to accept that loss',
      };
    }
  }
  let target: Candidate | undefined;
  if (req.target !== undefined) {
    if (!spec.nodes.some((n) => n.name === req.target)) {
      return {
        kind: 'refuse',
        code: 'E_UNKNOWN_NODE',
        reason: `no node named "${req.target}" in ${spec.source}`,
      };
    }
    target = ranked.find((c) => c.name === req.target);
    if (!target) {
      const o = obs.nodes.find((n) => n.node.name === req.target);
      return {
        kind: 'refuse',
        code: 'E_NOT_A_REPLICA',
        reason: `${req.target} is not a running replica (it is ${o ? roleOf(o) : 'unknown'}); only a replica can be promoted`,
      };
    }
    const ahead = furthestAhead(ranked, target);
    if (ahead && !req.force) {
      return {
        kind: 'refuse',
        code: 'E_BEHIND',
        reason:
          `${target.name} has less WAL (${target.positionLsn}) than ${ahead.name} (${ahead.positionLsn}): promoting it ` +
          `would lose those commits and ${ahead.name} could not follow it. ` +
          (ahead.problem === null
            ? `Promote ${ahead.name}, use --auto, or add --force`
            : `${ahead.name} is not healthy (${ahead.problem}): fix that and promote it, or add --force`),
      };
    }
    if (target.problem !== null && !req.force) {
      const healthy = ranked.find((c) => c.problem === null);
      return {
        kind: 'refuse',
        code: 'E_UNHEALTHY',
        reason:
          `${target.name} is not a healthy candidate: ${target.problem}. ` +
          `${healthy ? `Promote ${healthy.name} or use --auto` : 'Fix that'}, or add --force to promote it anyway`,
      };
    }
  } else if (req.auto) {
    target = best;
    if (best && best.problem !== null && !req.force) {
      return {
        kind: 'refuse',
        code: 'E_UNHEALTHY',
        reason:
          `no healthy replica to promote: ${ranked.map((c) => `${c.name}: ${c.problem}`).join('; ')}. ` +
          'Fix one, or add --force to promote the most advanced anyway',
      };
    }
    // Unhealthy ranks last, but passing over one that holds more WAL would lose what only it has
    // (in sync mode, perhaps acknowledged commits): never silently.
    const ahead = best ? furthestAhead(ranked, best) : undefined;
    if (best && ahead && !req.force) {
      return {
        kind: 'refuse',
        code: 'E_BEHIND',
        reason:
          `${ahead.name} holds WAL up to ${ahead.positionLsn}, past the best healthy replica ${best.name} ` +
          `(${best.positionLsn}), but is not healthy: ${ahead.problem}. Fix that and promote ${ahead.name}, ` +
          `or add --force to promote ${best.name} and lose that WAL`,
      };
    }
  }
  if (!target) return { kind: 'refuse', code: 'E_NO_CANDIDATE', reason: 'no running replica to promote' };
  const followers = ranked.filter((c) => c.name !== target.name).map((c) => c.name);
  const why = req.auto
    ? `it is the healthy replica with the most WAL (${target.positionLsn ?? 'none'}) of ${ranked.length}`
    : 'as asked';
  return {
    kind: 'promote',
    target: target.name,
    oldPrimary: old?.node.name ?? null,
    fence: oldRunning,
    followers,
    candidates: ranked,
    reason: `promoting ${target.name}: ${why}${old ? `; ${old.node.name} is ${roleOf(old)}` : ''}`,
  };
}

const held = (c: Candidate): bigint => comparableLsn(c.positionLsn);

/** The candidate holding the most WAL past `target`'s, healthy or not; undefined when none does. */
function furthestAhead(ranked: readonly Candidate[], target: Candidate): Candidate | undefined {
  return [...ranked]
    .filter((c) => held(c) > held(target))
    .sort((a, b) => (held(b) > held(a) ? 1 : held(b) < held(a) ? -1 : 0))[0];
}
