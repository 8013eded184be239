import { roleOf } from '../observe/observation.js';
import type { ClusterObservation, NodeObservation } from '../observe/observation.js';

/**
 * Why a replica that answers is not a healthy failover candidate, from what it and its peers
 * report; null when it is healthy. Its replay must not be paused (promotion would wait on it, and
 * whoever paused it meant something) nor stuck short of what it received, it must be on the newest timeline any node reports (an older
 * one missed a promotion), and while another replica streams it must stream too (one that does
 * not has been cut off for who knows how long).
 */
export function candidateProblem(o: NodeObservation, obs: ClusterObservation): string | null {
  const server = o.server?.ok ? o.server : undefined;
  if (!server || !server.instance.inRecovery) return 'it is not a running replica';
  if (server.instance.replayPaused === true)
    return 'its replay is paused (pg_is_wal_replay_paused); resume it with pg_wal_replay_resume() first';
  if (server.replayMoving === false)
    return `its replay is stuck at ${server.instance.replayLsn}, short of the ${server.instance.receiveLsn} it received (a query conflict or a long record?)`;
  const newest = newestTimeline(obs);
  const tl = server.instance.timeline;
  if (tl !== null && newest !== null && tl < newest.timeline)
    return `it is on timeline ${tl}, behind timeline ${newest.timeline} of ${newest.node}`;
  const streams = (n: NodeObservation) =>
    n.server?.ok === true && n.server.walReceiver?.status === 'streaming';
  const streamer = obs.nodes.find((n) => n !== o && roleOf(n) === 'replica' && streams(n));
  if (!streams(o) && streamer !== undefined)
    return `its WAL receiver is ${server.walReceiver?.status ?? 'not running'} while ${streamer.node.name} streams`;
  return null;
}

function newestTimeline(obs: ClusterObservation): { timeline: number; node: string } | null {
  let best: { timeline: number; node: string } | null = null;
  for (const n of obs.nodes) {
    const tl = n.server?.ok ? n.server.instance.timeline : null;
    if (tl !== null && tl !== undefined && (best === null || tl > best.timeline))
      best = { timeline: tl, node: n.node.name };
  }
  return best;
}
