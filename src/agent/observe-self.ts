import { readInstanceState, readSenders, readSlots } from '../postgres/instance-queries.js';
import type { InstanceState, SenderState, SlotState } from '../postgres/instance-queries.js';
import { withSql } from '../postgres/sql-client.js';
import type { KeptSession } from '../postgres/sql-client.js';
import type { NodeSpec } from '../cluster-spec/cluster-spec.js';
import { adminTarget } from '../cluster/context/cluster-context.js';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { controlOf } from '../cluster/actions/control-of.js';
import type { LocalServer, Peer } from '../cluster/decide/decide-agent.js';
import { replicaPosition } from '../cluster/decide/replica-position.js';
import type { MemberRecord } from '../dcs/ha-values.js';

/** The agent's own node this loop: what decideAgent needs, and the raw answer for its record. */
export interface SelfObservation {
  readonly local: LocalServer;
  /** The postmaster's PID, null when none runs. */
  readonly pid: number | null;
  readonly instance: InstanceState | null;
  /** On a primary: the standbys it waits for now (sync_state sync or quorum); empty elsewhere. */
  readonly syncStandbys: readonly string[];
  /** Of those, the ones that acknowledge as a quorum (ANY k: sync_state quorum). */
  readonly quorumStandbys: readonly string[];
  /** On a primary: each streaming standby's flush position; empty elsewhere. */
  readonly flushed: ReadonlyMap<string, string | null>;
  /** On a primary: its pg_stat_replication, for its metrics; empty elsewhere. */
  readonly senders: readonly SenderState[];
  /** On a primary: its replication slots and the WAL each retains; empty elsewhere. */
  readonly slots: readonly SlotState[];
}

const NONE: ReadonlyMap<string, string | null> = new Map();

/** A server that is not a primary has no standbys, senders or slots to tell of. */
const notPrimary = (
  local: LocalServer,
  pid: number | null,
  instance: InstanceState | null,
): SelfObservation => ({
  local,
  pid,
  instance,
  syncStandbys: [],
  quorumStandbys: [],
  flushed: NONE,
  senders: [],
  slots: [],
});

/** The host and port a primary_conninfo names, matched to the spec's nodes. */
export function upstreamOf(conninfo: string, nodes: readonly NodeSpec[]): string | null {
  const host = /(?:^|\s)host=(\S+)/.exec(conninfo)?.[1];
  const port = Number(/(?:^|\s)port=(\d+)/.exec(conninfo)?.[1] ?? 5432);
  return nodes.find((n) => n.host === host && n.port === port)?.name ?? null;
}

/** Reads the agent's own node: its data directory on disk, then its server over the kept session. */
export async function observeSelf(
  ctx: ClusterContext,
  node: NodeSpec,
  session: KeptSession,
): Promise<SelfObservation> {
  const disk = controlOf(ctx, node).state();
  if (disk.pid === null)
    return notPrimary(
      { kind: 'stopped', standby: disk.standbySignal, initialized: disk.initialized },
      null,
      null,
    );
  try {
    return await session.use(async (s) => {
      const instance = await readInstanceState(s);
      if (!instance.inRecovery) {
        const senders = await readSenders(s);
        return {
          local: { kind: 'primary', timeline: instance.timeline, lsn: instance.currentLsn },
          pid: disk.pid,
          instance,
          syncStandbys: senders
            .filter((x) => x.syncState === 'sync' || x.syncState === 'quorum')
            .map((x) => x.applicationName),
          quorumStandbys: senders.filter((x) => x.syncState === 'quorum').map((x) => x.applicationName),
          flushed: new Map(senders.map((x) => [x.applicationName, x.flushLsn])),
          senders,
          slots: await readSlots(s),
        };
      }
      // One round trip: the WAL receiver, where it points, and the slots no standby uses.
      const [row] = await s.query<{ status: string | null; c: string; idle: number }>(
        `SELECT (SELECT status FROM pg_stat_wal_receiver) AS status, current_setting('primary_conninfo') AS c,
                (SELECT count(*) FROM pg_replication_slots WHERE NOT active)::int AS idle`,
      );
      const streaming = row?.status === 'streaming';
      // Without a WAL receiver the server can only say the timeline of its last restartpoint; the
      // WAL it received says which timeline it really reached.
      const onDisk = streaming ? null : controlOf(ctx, node).newestWalTimeline();
      const timeline =
        instance.timeline === null || onDisk === null
          ? (instance.timeline ?? onDisk)
          : Math.max(instance.timeline, onDisk);
      const local: LocalServer = {
        kind: 'replica',
        timeline,
        positionLsn: replicaPosition(instance),
        replayLsn: instance.replayLsn,
        upstream: upstreamOf(row?.c ?? '', ctx.spec.nodes),
        streaming,
        problem:
          instance.replayPaused === true
            ? 'its replay is paused (pg_is_wal_replay_paused); pg_wal_replay_resume() lets it be promoted'
            : null,
        idleSlots: row?.idle ?? 0,
      };
      return notPrimary(local, disk.pid, instance);
    });
  } catch {
    // A postmaster that runs but does not answer: starting, in crash recovery, or hung.
    return notPrimary({ kind: 'starting' }, disk.pid, null);
  }
}

/** Every other node as its server answers now (in parallel, each within `timeoutMs`). */
export async function observePeers(
  ctx: ClusterContext,
  me: string,
  members: ReadonlyMap<string, MemberRecord>,
  timeoutMs: number,
): Promise<Peer[]> {
  return Promise.all(
    ctx.spec.nodes
      .map((node, specIndex) => ({ node, specIndex }))
      .filter(({ node }) => node.name !== me)
      .map(async ({ node, specIndex }): Promise<Peer> => {
        const record = members.get(node.name);
        const base = {
          name: node.name,
          agentAlive: record !== undefined,
          problem: record?.problem ?? null,
          failoverPriority: node.failoverPriority,
          noFailover: node.noFailover,
          specIndex,
        };
        const target = adminTarget(ctx, node);
        try {
          if (!target) throw new Error('no superuser password');
          const i = await withSql(target, readInstanceState, timeoutMs);
          return {
            ...base,
            inRecovery: i.inRecovery,
            timeline: i.timeline,
            positionLsn: i.inRecovery ? replicaPosition(i) : i.currentLsn,
            replayLsn: i.replayLsn,
          };
        } catch {
          return { ...base, inRecovery: null, timeline: null, positionLsn: null, replayLsn: null };
        }
      }),
  );
}
