import type { EtcdMember } from '../../dcs/etcd-client.js';

export type RaftLeaderMove =
  | { readonly kind: 'move'; readonly leaderUrl: string; readonly targetId: string; readonly reason: string }
  | { readonly kind: 'stay'; readonly reason: string };

const hostOf = (url: string): string | null => {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  } catch {
    return null;
  }
};

const onHost = (m: EtcdMember, host: string) => m.clientUrls.some((u) => hostOf(u) === host);

/**
 * Whether the PostgreSQL leader's agent should hand etcd's raft leadership to a member on another
 * host. With both on one host, a partition of that host costs an etcd election on top of the
 * leader's TTL, and the new raft leader extends every lease it takes over by a TTL and an election
 * timeout (etcd's lessor does so when it is promoted): the lab measured ~3 s instead of ~1.7 s on
 * the fast profile, 5–9 s instead of ~4.4 s on the default one. Members are matched to hosts by
 * their client URLs; an etcd that is not on the nodes' hosts (`ha.etcd`) is left as it is.
 */
export function decideRaftLeaderMove(o: {
  readonly members: readonly EtcdMember[];
  readonly leaderId: string;
  /** The PostgreSQL leader's host, as the spec names it. */
  readonly host: string;
}): RaftLeaderMove {
  const host = o.host.replace(/^\[|\]$/g, '').toLowerCase();
  const leader = o.members.find((m) => m.id === o.leaderId);
  if (!leader) return { kind: 'stay', reason: 'etcd names no raft leader among its members now' };
  if (!onHost(leader, host))
    return { kind: 'stay', reason: `etcd's raft leader ${leader.name} is not on ${host}` };
  const elsewhere = o.members
    .filter((m) => m.id !== leader.id && !onHost(m, host) && m.clientUrls.length > 0)
    .sort((a, b) => a.name.localeCompare(b.name));
  const target = elsewhere[0];
  const leaderUrl = leader.clientUrls.find((u) => hostOf(u) === host);
  if (!target || leaderUrl === undefined)
    return {
      kind: 'stay',
      reason: `every etcd member is on ${host}: there is no other host to move the raft leader to`,
    };
  return {
    kind: 'move',
    leaderUrl,
    targetId: target.id,
    reason: `etcd's raft leader ${leader.name} runs on ${host}, the PostgreSQL leader's host: handing it to ${target.name}, so that a partition of this host does not cost an etcd election too`,
  };
}
