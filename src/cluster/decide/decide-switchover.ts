import type { ClusterSpec } from '../../cluster-spec/cluster-spec.js';
import { candidatesOf } from './decide-promote.js';
import { roleOf, runningReplicas } from '../observe/observation.js';
import type { ClusterObservation } from '../observe/observation.js';
import { rankCandidates } from './rank-candidates.js';
import { topologyGuard } from './topology-guard.js';
import type { GuardRefusal } from './topology-guard.js';

/** A target further behind than this is not "caught up": the write gap would grow with its lag. */
export const MAX_SWITCHOVER_LAG_BYTES = 16 * 1024 * 1024;

export type SwitchoverDecision =
  | {
      kind: 'refuse';
      code:
        | 'E_NO_PRIMARY'
        | 'E_UNKNOWN_NODE'
        | 'E_IS_PRIMARY'
        | 'E_NOT_A_REPLICA'
        | 'E_NO_CANDIDATE'
        | 'E_UNHEALTHY'
        | 'E_BEHIND'
        | GuardRefusal['code'];
      reason: string;
    }
  | { kind: 'switchover'; oldPrimary: string; target: string; followers: string[]; reason: string };

/**
 * Decides a planned switchover. Pure. Needs exactly one answering primary and a target that
 * streams from it and is caught up; with no target named, the best-ranked streaming replica.
 */
export function decideSwitchover(
  spec: ClusterSpec,
  obs: ClusterObservation,
  to: string | undefined,
): SwitchoverDecision {
  const guard = topologyGuard(obs, { actsOn: 'all' });
  if (guard) return { kind: 'refuse', ...guard };
  const primary = obs.nodes.find((o) => roleOf(o) === 'primary');
  if (!primary?.server?.ok) {
    return {
      kind: 'refuse',
      code: 'E_NO_PRIMARY',
      reason: 'no primary answers; for an unplanned failover use `pgrepl promote --auto`',
    };
  }
  const senders = primary.server.senders;
  const streaming = new Set(senders.filter((s) => s.state === 'streaming').map((s) => s.applicationName));
  const ranked = rankCandidates(candidatesOf(spec, obs).filter((c) => streaming.has(c.name)));
  if (to !== undefined && !spec.nodes.some((n) => n.name === to)) {
    return { kind: 'refuse', code: 'E_UNKNOWN_NODE', reason: `no node named "${to}" in ${spec.source}` };
  }
  if (to === primary.node.name)
    return { kind: 'refuse', code: 'E_IS_PRIMARY', reason: `${to} is already the primary` };
  const target = to === undefined ? ranked[0] : ranked.find((c) => c.name === to);
  if (!target) {
    return {
      kind: 'refuse',
      code: to === undefined ? 'E_NO_CANDIDATE' : 'E_NOT_A_REPLICA',
      reason:
        to === undefined
          ? 'no replica streams from the primary'
          : `${to} does not stream from ${primary.node.name}; only a streaming replica can take over`,
    };
  }
  if (target.problem !== null) {
    return {
      kind: 'refuse',
      code: 'E_UNHEALTHY',
      reason: `${target.name} cannot take over: ${target.problem}`,
    };
  }
  const lag = senders.find((s) => s.applicationName === target.name)?.lagBytes ?? 0;
  if (lag > MAX_SWITCHOVER_LAG_BYTES) {
    return {
      kind: 'refuse',
      code: 'E_BEHIND',
      reason: `${target.name} is ${Math.round(lag / 1048576)} MB behind ${primary.node.name}; wait until it catches up (status shows its lag)`,
    };
  }
  return {
    kind: 'switchover',
    oldPrimary: primary.node.name,
    target: target.name,
    followers: runningReplicas(obs, target.name),
    reason: `switching ${primary.node.name} -> ${target.name}${to === undefined ? ' (the most advanced streaming replica)' : ''}`,
  };
}
