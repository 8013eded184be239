import type { ClusterSpec } from '../cluster-spec/cluster-spec.js';
import { etcdClient } from '../dcs/etcd-client.js';
import { haStore } from '../dcs/ha-store.js';
import { effectiveHa, etcdConnection } from '../ha/ha-services.js';

/** What `status` adds when agents run the cluster: the leader, its lease, each agent's last decision. */
export interface HaStatus {
  readonly etcd: readonly string[];
  /** Why etcd could not be read; null when it was. */
  readonly error: string | null;
  readonly leader: string | null;
  /** Seconds before the leader's lease runs out if it stops renewing, as etcd counts them (whole seconds, rounded down). */
  readonly leaseSecondsLeft: number | null;
  readonly paused: boolean;
  /**
   * The synchronous set the leader recorded (sync and quorum modes): a failover promotes only a
   * replica that n − count + 1 of these standbys, itself included, are not ahead of. null: none.
   */
  readonly synchronous: { readonly count: number; readonly standbys: readonly string[] } | null;
  /** Per node: its agent as its member record in etcd says, null when it has none (no agent runs). */
  readonly agents: Readonly<
    Record<string, { pid: number; api: string; decision: string; reason: string; at: string } | null>
  >;
}

/** Reads the cluster's HA state from etcd for `status`; undefined when HA is off for this cluster. */
export async function readHaStatus(
  spec: ClusterSpec,
  env: Readonly<Record<string, string | undefined>>,
): Promise<HaStatus | undefined> {
  const ha = effectiveHa(spec);
  if (!ha) return undefined;
  const connection = etcdConnection(spec, ha, env);
  const endpoints = connection.endpoints;
  const none = Object.fromEntries(spec.nodes.map((n) => [n.name, null]));
  try {
    const etcd = etcdClient({ ...connection, requestTimeoutMs: ha.retryTimeoutMs });
    const store = haStore(etcd, spec.cluster);
    const s = await store.read();
    const leaseSecondsLeft = s.leaderLease ? await store.leaseSecondsLeft(s.leaderLease) : null;
    const agents = Object.fromEntries(
      spec.nodes.map((n) => {
        const m = s.members.get(n.name);
        return [
          n.name,
          m
            ? {
                pid: m.pid,
                api: m.api,
                decision: m.decision,
                reason: m.reason,
                at: new Date(m.at).toISOString(),
              }
            : null,
        ];
      }),
    );
    return {
      etcd: endpoints,
      error: null,
      leader: s.view.leader?.node ?? null,
      leaseSecondsLeft,
      paused: s.view.paused,
      synchronous: s.view.sync,
      agents,
    };
  } catch (err) {
    return {
      etcd: endpoints,
      error: (err as Error).message,
      leader: null,
      leaseSecondsLeft: null,
      paused: false,
      synchronous: null,
      agents: none,
    };
  }
}

/** The lines `status` prints below its table about the agents. */
export function formatHaStatus(h: HaStatus): string {
  if (h.error) return `agents: etcd (${h.etcd.join(', ')}) does not answer: ${h.error}`;
  const head =
    `agents: leader ${h.leader ?? 'none'}` +
    // etcd counts a lease's time left in whole seconds: 0 while the key exists is under a second.
    (h.leaseSecondsLeft === null
      ? ''
      : ` (lease ${h.leaseSecondsLeft === 0 ? '< 1' : h.leaseSecondsLeft} s)`) +
    (h.synchronous
      ? ` · synchronous set ${h.synchronous.count} of ${h.synchronous.standbys.join(', ')}`
      : '') +
    (h.paused ? ' · PAUSED: agents change nothing (`pgrepl unpause`)' : '');
  const lines = Object.entries(h.agents).map(([node, a]) =>
    a ? `  ${node}: pid ${a.pid}, ${a.api}, ${a.decision}: ${a.reason}` : `  ${node}: no agent`,
  );
  return [head, ...lines].join('\n');
}
