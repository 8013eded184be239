import { PgreplError } from '../errors.js';
import { parseLsn } from '../postgres/lsn.js';
import { readWalReceiver } from '../postgres/instance-queries.js';
import { readReplayProgress } from '../postgres/promotion.js';
import type { KeptSession, SqlSession } from '../postgres/sql-client.js';
import type { HaSpec, NodeSpec } from '../cluster-spec/cluster-spec.js';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { controlOf } from '../cluster/actions/control-of.js';
import { prepareStateDir } from '../cluster/context/cluster-context.js';
import { nodeOf, sqlOn } from '../cluster/context/node-sql.js';
import {
  createSlotsFor,
  dropSlotsOnStandby,
  makeStandby,
  promote,
  repoint,
} from '../cluster/actions/topology-actions.js';
import type { AgentDecision } from '../cluster/decide/decide-agent.js';
import { replicaPosition } from '../cluster/decide/replica-position.js';
import { pendingSyncSet, syncSetToSettle } from '../cluster/decide/decide-sync-set.js';
import { runRejoin } from '../cluster/operations/run-rejoin.js';
import { runInitialize } from '../cluster/operations/run-initialize.js';
import type { HaStore } from '../dcs/ha-store.js';
import type { DcsView, HaState, LeaderSyncSet } from '../dcs/ha-values.js';
import type { PromotionReason } from './agent-state.js';
import { observeSelf } from './observe-self.js';
import type { SelfObservation } from './observe-self.js';

/** What the executors need of their agent: its node, its connections, and the state they change. */
export interface ExecutorHost {
  readonly ctx: ClusterContext;
  readonly node: NodeSpec;
  readonly ha: HaSpec;
  readonly store: HaStore;
  readonly session: KeptSession;
  /** This agent's lease id for a fenced write ('0', which no key lives on, without one). */
  readonly leaseId: string;
  /** The switchover request (its `at`) for which this agent made the others' slots. */
  slotsMadeFor: number | null;
  /** The lease its leader key is known to be on; null when it holds none. */
  keyOnLease: string | null;
  /** A start of its server in place under way (a crash restart). */
  restarting: Promise<void> | null;
  /** When it saw the leader key go (for the failover's duration); null when there is a leader. */
  leaderGoneAt: number | null;
  /** The synchronous set a new leader records with its key; null in async mode. */
  syncSetToRecord(): LeaderSyncSet | null;
  /** The leader records the synchronous set of its spec once it is safe (decideSyncSet). */
  followSyncSet(s: HaState, self: SelfObservation): Promise<void>;
  armBeforePrimary(pid: number | null): void;
  promoted(why: PromotionReason, ms: number | null): void;
  /** The server is not what the loop observed: the next loop runs at once. */
  lookAgain(): void;
  failed(during: string, err: unknown): void;
}

type Execute<K extends AgentDecision['kind']> = (
  d: Extract<AgentDecision, { kind: K }>,
  s: HaState | null,
  self: SelfObservation,
) => Promise<void>;

/** How long the agent waits for a CHECKPOINT it asks for (before a hand-over, after a promotion). */
const CHECKPOINT_MS = 30_000;

/** How long a switchover step polls its own server (for WAL, for streaming) before the loop runs again. */
const AWAIT_OWN_SERVER_MS = 1000;

/**
 * What carries out each decision kind on the agent's own node: one function per kind (the table
 * of decisions, DECISIONS, says which group each belongs to); the type makes a missing one an error.
 */
export function agentExecutors(h: ExecutorHost): { readonly [K in AgentDecision['kind']]: Execute<K> } {
  const control = () => controlOf(h.ctx, h.node);

  /** The synchronous set this agent recorded as pending with its key, until it announces. */
  let pendingSet: LeaderSyncSet | null = null;

  /**
   * What a new leader records with its key: its set, pending (RecordedSyncSet.replaces) while no
   * standby may follow it, so that a failure before its announcement leaves the old set in force.
   */
  const syncWithKey = (s: HaState | null, followable: boolean) => {
    const set = h.syncSetToRecord();
    pendingSet = followable ? null : set;
    return {
      sync: set === null || followable ? set : pendingSyncSet(set, s?.view.sync ?? null),
      syncRevision: s?.syncRevision ?? 0,
    };
  };

  /** Records the leader's position, unless etcd holds it already (`known`: what this loop read). */
  const recordLeaderPosition = async (self: SelfObservation, known?: DcsView['lastLeaderLsn']) => {
    if (self.local.kind !== 'primary' || self.local.lsn === null) return;
    const { lsn, timeline } = self.local;
    if (known?.lsn === lsn && known.timeline === timeline && known.node === h.node.name) return;
    await h.store.recordPosition(h.leaseId, { lsn, timeline, node: h.node.name });
  };

  /** Marks the key ready and records the leader's position; returns the server as it then is. */
  const announce = async (s: HaState | null): Promise<SelfObservation> => {
    // Its pending synchronous set comes into force with the announcement: replicas may follow now.
    const settle = syncSetToSettle(pendingSet, s?.view.leader?.node === h.node.name ? s.view.sync : null);
    if (!(await h.store.announceLeader(h.node.name, h.leaseId, null, settle)))
      throw new PgreplError('E_NOT_LEADER', 'the leader key is no longer on my lease: not announcing');
    h.leaderGoneAt = null;
    pendingSet = null;
    const self = await observeSelf(h.ctx, h.node, h.session);
    await recordLeaderPosition(self);
    // A switchover to this node is done.
    if (s?.view.switchover?.to === h.node.name) await h.store.finishSwitchover(h.leaseId);
    return self;
  };

  /**
   * Promotes its server under the key it won, makes every slot, then lets the replicas follow. The
   * caller has recorded the synchronous set: before the primary can acknowledge a commit with it.
   */
  const promoteSelf = async (s: HaState | null): Promise<void> => {
    const { ctx, node } = h;
    h.armBeforePrimary(control().state().pid);
    // The kept connection: a new one would put a SCRAM exchange into the write gap.
    await h.session.use(async (session) => {
      await promote(ctx, node, session);
      await createSlotsFor(ctx, node, session);
    });
    const ms = h.leaderGoneAt === null ? null : ctx.clock.now() - h.leaderGoneAt;
    const promoted = await announce(s);
    // Until its first checkpoint on the new timeline, its control file points into the old one,
    // whose last segment promotion renamed to .partial: dying before then, it could not be rewound
    // (pg_rewind looks for that segment) and is re-cloned. The timed checkpoint can be minutes away,
    // so ask for one now, on a connection of its own, leaving the loop's connection free.
    // A WAL switch first: checkpoints remove segments by number whatever their timeline, and every
    // failover of a quiet cluster would add a 16 MB segment of the same number on each node (the
    // new timeline's, copied by pg_rewind and streaming) that none removes until writes move past
    // that number; the lab's disks filled so. Once the replicas stream past it, the next
    // checkpoint (and restartpoint) removes every timeline's copy.
    void sqlOn(
      ctx,
      node,
      async (q) => {
        await q.query('SELECT pg_switch_wal()');
        await q.query('CHECKPOINT');
      },
      undefined,
      CHECKPOINT_MS,
    ).catch((err: unknown) => h.failed('the checkpoint after promotion', err));
    const from = s?.view.lastLeaderLsn ?? null;
    const op = s?.view.switchover?.to === node.name ? 'switchover' : 'failover';
    const asked = s?.view.failover?.to === node.name ? s.view.failover : null;
    h.promoted(op === 'switchover' ? 'switchover' : asked ? 'operator' : 'leader_lost', ms);
    await ctx.store
      .appendHistory({
        at: new Date().toISOString(),
        op,
        node: node.name,
        from: from?.node ?? null,
        timeline: promoted.local.kind === 'primary' ? promoted.local.timeline : null,
        lsn: from?.lsn ?? null,
        durationMs: ms ?? 0,
        reason:
          op === 'switchover'
            ? `switchover asked by an operator; ${from?.node ?? 'the old leader'} stopped cleanly`
            : asked
              ? `failover to ${node.name} asked by an operator (\`pgrepl promote\`${asked.force ? ' --force' : ''}); no one held the leader key`
              : `the leader key of ${from?.node ?? 'the old leader'} expired or was released; ${node.name} was the most advanced eligible replica`,
      })
      .catch((err: unknown) => h.failed(`recording the ${op}`, err));
  };

  /**
   * Polls its own server every 2 ms over the kept session until `done`, for at most
   * AWAIT_OWN_SERVER_MS; the loop then runs again at once, rather than sleep, to act on it.
   */
  const pollOwnServer = async (done: (session: SqlSession) => Promise<boolean>): Promise<void> => {
    const { clock } = h.ctx;
    const until = clock.now() + AWAIT_OWN_SERVER_MS;
    try {
      await h.session.use(async (session) => {
        while (clock.now() < until && !(await done(session))) await clock.sleep(2);
      });
    } finally {
      h.lookAgain();
    }
  };

  return {
    'take-key': async (_d, s) => {
      const lease = h.leaseId;
      const taken = await h.store.takeLeader({
        node: h.node.name,
        lease,
        ready: true,
        followable: true,
        ...syncWithKey(s, true),
      });
      if (taken) h.keyOnLease = lease;
    },

    race: async (_d, s) => {
      // A switchover target that made every slot already may be streamed from at once.
      const sw = s?.view.switchover;
      const lease = h.leaseId;
      // The synchronous set goes with the key: recorded before this server can acknowledge a
      // commit, in one etcd write rather than two on the way to the promotion.
      const followable = sw?.to === h.node.name && h.slotsMadeFor === sw.at;
      const won = await h.store.takeLeader({
        node: h.node.name,
        lease,
        ready: false,
        followable,
        ...syncWithKey(s, followable),
      });
      if (!won) return;
      h.keyOnLease = lease;
      await promoteSelf(s);
    },

    initialize: async (d, s, self) => {
      const { ctx, node } = h;
      let claim = s?.view.initialize ?? null;
      if (d.step === 'claim') {
        const at = ctx.clock.wallNow();
        if (!(await h.store.claimInitialize(node.name, at))) return h.lookAgain();
        claim = { node: node.name, at, done: false };
      }
      if (claim?.node !== node.name) return;
      if (d.step === 'record') {
        await h.store.finishInitialize(claim);
        return;
      }
      // The key before the server: its primary never runs a moment without it.
      const lease = h.leaseId;
      if (h.keyOnLease !== lease) {
        const taken = await h.store.takeLeader({
          node: node.name,
          lease,
          ready: false,
          followable: false,
          ...syncWithKey(s, false),
        });
        if (!taken)
          throw new PgreplError(
            'E_NOT_LEADER',
            `another node holds the leader key: not initializing the cluster on ${node.name}`,
          );
        h.keyOnLease = lease;
      }
      h.armBeforePrimary(null);
      const began = ctx.clock.now();
      try {
        if (self.local.kind !== 'stopped') await control().fence();
        const aside = control().moveAside();
        if (aside !== null)
          ctx.events.emit({
            event: 'note',
            message: `${node.name}: the data directory of an unfinished initialization was moved to ${aside}`,
          });
        await runInitialize(ctx, node);
      } catch (err) {
        // Never announced, so no one holds anything of it: what this attempt made goes, and any
        // agent (this one too) may try again.
        await control().fence();
        const made = control().moveAside();
        if (made !== null) control().removeMovedAside(made);
        await h.store.releaseLeader(lease);
        h.keyOnLease = null;
        await h.store.abandonInitialize(claim);
        throw err;
      }
      await announce(s);
      await h.store.finishInitialize(claim);
      await ctx.store
        .appendHistory({
          at: new Date().toISOString(),
          op: 'initialize',
          node: node.name,
          from: null,
          timeline: 1,
          lsn: null,
          durationMs: ctx.clock.now() - began,
          reason: `${node.name}'s agent won the cluster's initialize key: initdb, role ${ctx.spec.replication.user}, a slot for every other node`,
        })
        .catch((err: unknown) => h.failed('recording the initialization', err));
    },

    promote: async (_d, s) => {
      // Holding the key already: the synchronous set is recorded before the promotion, in a write
      // fenced by the key, pending while no standby may follow it (the set in force it read, this
      // agent's own pending record's included, stays so). A key lost meanwhile records nothing and
      // promotes nothing.
      const followable = s?.view.leader?.followable === true;
      const { sync: set } = syncWithKey(s, followable);
      if (set !== null && !(await h.store.recordSyncSet(h.leaseId, set)))
        throw new PgreplError('E_NOT_LEADER', 'the leader key is no longer on my lease: not promoting');
      await promoteSelf(s);
    },

    announce: async (_d, s) => {
      await announce(s);
    },

    restart: async () => {
      // One start at a time, waited for at most a quarter of the TTL: a long crash recovery must
      // not hold up the loop; the next loops see it starting, and release the key if it takes too long.
      if (h.restarting === null) h.armBeforePrimary(null);
      h.restarting ??= control()
        .start()
        .catch((err: unknown) => h.failed('restarting the primary', err))
        .finally(() => (h.restarting = null));
      await Promise.race([h.restarting, h.ctx.clock.sleep((h.ha.ttlSeconds * 1000) / 4)]);
    },

    release: async () => {
      await control().fence();
      await h.store.releaseLeader(h.leaseId);
      h.keyOnLease = null;
    },

    fence: async () => {
      await control().fence();
    },

    /**
     * A switchover: refuses a target that cannot take over (recording why, for the operator), else
     * stops the server cleanly (its walsenders send the shutdown checkpoint to the replicas before
     * they exit), records where that checkpoint starts, and gives up the key: the target races once
     * it holds the checkpoint, so no acknowledged commit is lost and this node rejoins without a rewind.
     */
    'hand-over': async (d, s) => {
      const { ctx, node } = h;
      const sw = s?.view.switchover;
      if (!sw) return;
      const request = { from: sw.from, to: sw.to, at: sw.at };
      const target = s.members.get(d.to);
      const refusal = !target
        ? `${d.to} has no agent running`
        : target.role !== 'replica'
          ? `${d.to} is not a running replica (${target.role})`
          : target.problem;
      if (refusal) {
        await h.store.refuseSwitchover(h.leaseId, request, refusal);
        return;
      }
      // A checkpoint first leaves little for the shutdown checkpoint to write: a shorter write gap.
      // Its own connection, bounded: one that takes longer is left to the shutdown checkpoint.
      await sqlOn(ctx, node, (q) => q.query('CHECKPOINT'), undefined, CHECKPOINT_MS).catch((err: unknown) =>
        h.failed('the checkpoint before handing over', err),
      );
      // The key goes the moment the shutdown checkpoint is written, not once the postmaster is gone
      // (its walsenders sending that record and exiting took 20–70 ms more here, all in the write gap).
      const stopped = await control().shutDownCleanly();
      if (stopped.state !== 'shut down') {
        // No clean end: the target may lack commits, so no switchover; the agents fail over as
        // after a crash, under the rules of any failover.
        const reason = `${node.name} did not shut down cleanly (its control file says "${stopped.state}"): no switchover`;
        await h.store.releaseLeader(h.leaseId, { refused: { request, reason } });
      } else {
        const position = {
          lsn: stopped.checkpointLsn,
          timeline: stopped.timeline,
          node: node.name,
          shutdownCheckpoint: true,
        };
        await h.store.releaseLeader(h.leaseId, { position });
      }
      h.keyOnLease = null;
      await control().stop('fast');
    },

    // A switchover target waits until its server holds WAL past the old leader's shutdown
    // checkpoint, on its way from the walsender.
    'await-wal': async (d) => {
      const want = parseLsn(d.lsn);
      await pollOwnServer(async (session) => {
        const p = await readReplayProgress(session);
        const at = replicaPosition({ receiveLsn: p.receive, replayLsn: p.replay });
        return at !== null && parseLsn(at) > want;
      });
    },

    follow: async (d, s) => {
      const upstream = nodeOf(h.ctx, d.upstream);
      await repoint(h.ctx, h.node, upstream);
      // Moved to a switchover target: the leader stops once this node's record says it streams.
      if (s?.view.switchover?.to === upstream.name)
        await pollOwnServer(async (session) => {
          const r = await readWalReceiver(session);
          return (
            r?.status === 'streaming' && r.senderPort === upstream.port && r.senderHost === upstream.host
          );
        });
    },

    'start-replica': async (d) => {
      makeStandby(h.ctx, h.node, nodeOf(h.ctx, d.leader));
      await control().start();
    },

    'start-standby': async () => {
      makeStandby(h.ctx, h.node, undefined);
      await control().start();
    },

    rejoin: async () => {
      try {
        // On a host of its own nothing else wrote the passfiles the clone and the rewind read.
        await runRejoin(prepareStateDir(h.ctx, { roleHasPassword: false }), h.node.name, {
          reclone: false,
          cloneFromRepository: h.ctx.spec.backup?.clone === 'backup',
        });
      } finally {
        // A re-clone moves the old data directory aside for the operator (`pgrepl clean`); an agent
        // re-clones with no one there to clean, so it keeps the newest copy alone: every earlier
        // one would stay until the disk is full (a soak filled a host's disk so).
        const old = control().movedAside();
        for (const dir of old.slice(0, -1)) control().removeMovedAside(dir);
      }
    },

    'make-slots': async (d) => {
      // While still a standby: they exist before any replica is told to stream from here.
      await h.session.use((session) => createSlotsFor(h.ctx, h.node, session));
      h.slotsMadeFor = d.for;
    },

    'drop-slots': async () => {
      await dropSlotsOnStandby(h.ctx, h.node);
      h.slotsMadeFor = null;
    },

    lead: async (_d, s, self) => {
      if (s === null) return;
      await recordLeaderPosition(self, s.view.lastLeaderLsn);
      await h.followSyncSet(s, self);
    },

    wait: () => Promise.resolve(),
  };
}
