import { localDir, roleOf } from '../observe/observation.js';
import type { ClusterObservation } from '../observe/observation.js';

export interface GuardRefusal {
  readonly code: 'E_TWO_PRIMARIES' | 'E_SERVER_OUTSIDE_DATA_DIR' | 'E_PORT_IN_USE' | 'E_NOT_LOCAL';
  readonly reason: string;
}

export interface GuardRequest {
  /**
   * Nodes whose files and processes the operation touches, which must therefore be on this
   * machine ('all': every node, as `up` and a promotion that re-points the others do).
   */
  readonly actsOn: 'all' | readonly string[];
  /** Let a split brain through: `rejoin --keep` and `status` deal with one themselves. */
  readonly allowSplitBrain?: boolean;
}

/**
 * What every decision checks before any other: never act while two nodes accept writes, while a
 * node's address is served from outside its data directory (a stop would stop nothing there and a
 * start would find the port taken, so fencing, promoting or starting could leave two primaries),
 * or on a node whose files are on another host. Pure; null when the operation may go on.
 */
export function topologyGuard(obs: ClusterObservation, req: GuardRequest): GuardRefusal | null {
  const writable = obs.nodes.filter((o) => roleOf(o) === 'primary');
  if (writable.length > 1 && req.allowSplitBrain !== true)
    return {
      code: 'E_TWO_PRIMARIES',
      reason: `${writable.map((o) => o.node.name).join(' and ')} both accept writes (split brain); stop all but one before anything else`,
    };
  const outside = obs.nodes.find((n) => n.serverOutsideDataDir);
  if (outside) {
    const { name, host, port, dataDir } = outside.node;
    if (!outside.server?.ok)
      return {
        code: 'E_PORT_IN_USE',
        reason: `port ${port} on ${host} (node ${name}) is taken by another process; stop it or give ${name} another port in the spec`,
      };
    return {
      code: 'E_SERVER_OUTSIDE_DATA_DIR',
      reason:
        `${name}'s address ${host}:${port} is served by a PostgreSQL server that does not run from ${name}'s data directory ` +
        `${dataDir}: pgrepl can neither stop nor start it. If it is ${name}, set ${name}'s dataDir to the directory it ` +
        `runs from; otherwise stop that server or give ${name} another port`,
    };
  }
  const remote = obs.nodes.filter(
    (o) => localDir(o) === null && (req.actsOn === 'all' || req.actsOn.includes(o.node.name)),
  );
  const [first] = remote;
  if (first)
    return {
      code: 'E_NOT_LOCAL',
      reason:
        `${remote.map((o) => `${o.node.name} (${o.node.host})`).join(', ')} ${remote.length > 1 ? 'are' : 'is'} on another host: ` +
        "pgrepl changes a node's files and processes only on that node's own machine. Run this command there; " +
        '`pgrepl status` works from anywhere',
    };
  return null;
}
