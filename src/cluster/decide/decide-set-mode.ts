import type { ReplicationMode } from '../../cluster-spec/cluster-spec.js';
import { roleOf } from '../observe/observation.js';
import type { ClusterObservation } from '../observe/observation.js';
import { topologyGuard } from './topology-guard.js';
import type { GuardRefusal } from './topology-guard.js';

export interface SetModeRequest {
  readonly mode: ReplicationMode;
  /** How many replicas must confirm each commit (sync, quorum); 1 for async. */
  readonly count: number;
  /** Accept a mode that more replicas must confirm than stream now (commits wait until they do). */
  readonly force: boolean;
}

export type SetModeDecision =
  | { kind: 'refuse'; code: 'E_TOO_FEW_REPLICAS' | GuardRefusal['code']; reason: string }
  | { kind: 'set'; mode: ReplicationMode; count: number; reason: string };

/**
 * Decides a change of replication mode. Pure. A mode that needs more confirming replicas than
 * stream now would make every commit hang, so it is refused without --force.
 */
export function decideSetMode(obs: ClusterObservation, req: SetModeRequest): SetModeDecision {
  const guard = topologyGuard(obs, { actsOn: 'all' });
  if (guard) return { kind: 'refuse', ...guard };
  const primary = obs.nodes.find((n) => roleOf(n) === 'primary');
  const streaming = primary?.server?.ok
    ? primary.server.senders.filter((s) => s.state === 'streaming').length
    : 0;
  const what = `${req.mode}${req.mode === 'async' ? '' : ` --count ${req.count}`}`;
  if (req.mode !== 'async' && req.count > streaming && !req.force)
    return {
      kind: 'refuse',
      code: 'E_TOO_FEW_REPLICAS',
      reason:
        `${what} needs ${req.count} streaming replica(s) and ${streaming} stream now: every commit would hang. ` +
        'Bring replicas up first, or add --force if that is what you want',
    };
  return {
    kind: 'set',
    mode: req.mode,
    count: req.mode === 'async' ? 1 : req.count,
    reason:
      req.mode === 'async'
        ? 'commits no longer wait for a replica'
        : `each commit waits for ${req.count} of the ${streaming} streaming replica(s)${req.count > streaming ? ' (forced: fewer stream now)' : ''}`,
  };
}
