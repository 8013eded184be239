import { statSync } from 'node:fs';
import { PgreplError } from '../errors.js';
import { watchProcess } from '../postgres/process-watch.js';
import type { ProcessWatch } from '../postgres/process-watch.js';
import { lsnDiff, parseLsn } from '../postgres/lsn.js';
import { readWalReceiver } from '../postgres/instance-queries.js';
import { readReplayProgress } from '../postgres/promotion.js';
import { keptSession } from '../postgres/sql-client.js';
import type { KeptSession, SqlSession } from '../postgres/sql-client.js';
import type { HaSpec, NodeSpec } from '../spec/cluster-spec.js';
import { adminTarget, requireSuperuserPassword } from '../cluster/context/cluster-context.js';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { controlOf } from '../cluster/actions/control-of.js';
import { nodeOf, sqlOn } from '../cluster/actions/node-actions.js';
import {
  createSlotsFor,
  dropSlotsOnStandby,
  makeStandby,
  promote,
  renderPrimary,
  repoint,
  syncSettingTakenAt,
} from '../cluster/actions/topology-actions.js';
import { decideAgent, needsPeers } from '../cluster/decide/decide-agent.js';
import { replicaPosition } from '../cluster/decide/replica-position.js';
import { decideSyncSet } from '../cluster/decide/decide-sync-set.js';
import type { AgentDecision, AgentSnapshot, Peer } from '../cluster/decide/decide-agent.js';
import { runRejoin } from '../cluster/operations/run-rejoin.js';
import type { EtcdClient } from '../dcs/etcd-client.js';
import { haStore } from '../dcs/ha-store.js';
import type { HaStore } from '../dcs/ha-store.js';
import type { DcsView, HaState, MemberRecord, SyncSet } from '../dcs/ha-values.js';
import type { FenceLink } from './fence-link.js';
import { LeaseKeeper } from './lease-keeper.js';
import { watchStaleness } from './watch-staleness.js';
import type { HeldLease } from './lease-keeper.js';
import { observePeers, observeSelf } from './observe-self.js';
import type { SelfObservation } from './observe-self.js';

/**
 * Why an agent promoted its server: the leader key expired or was released (`leader_lost`), an
 * operator asked for this node (`pgrepl promote`: `operator`), or a switchover handed over to it.
 */
export type PromotionReason = 'leader_lost' | 'operator' | 'switchover';

/** What the agent knows after its last loop: served by its API, published in etcd, logged on change. */
export interface AgentState {
  readonly node: string;
  readonly self: SelfObservation | null;
  /** Its own member record as this loop made it (its lag from the leader position it just read). */
  readonly record: MemberRecord | null;
  readonly decision: AgentDecision | null;
  readonly ha: HaState | null;
  /** Until when its lease is sure to live (the agent's clock: monotonic ms); 0 without one. */
  readonly leaseSafeUntil: number;
  readonly lastLoopAt: number;
  readonly lastLoopMs: number;
  readonly etcdErrors: number;
  /** This agent's promotions since it started, by why. */
  readonly promotions: Readonly<Record<PromotionReason, number>>;
  /** From the leader key's loss (as this agent saw it) to its promoted server taking writes. */
  readonly lastFailoverMs: number | null;
}

export interface AgentDeps {
  readonly ctx: ClusterContext;
  readonly node: NodeSpec;
  readonly ha: HaSpec;
  readonly etcd: EtcdClient;
  readonly fence: FenceLink;
  /** http://host:port of this agent's API, for its member record. */
  readonly api: string;
  /**
   * The agent's context from the spec file as it is now; the agent calls it when the file changed
   * (a node removed), and then acts on the new spec. Absent: the spec is never re-read.
   */
  readonly reload?: () => Promise<ClusterContext>;
  /**
   * Asks every other member's agent to promise not to promote (failsafe), and says who did. Absent:
   * no failsafe round can be made (the leader then stops writes before its lease could run out).
   */
  readonly askFailsafe?: () => Promise<readonly { node: string; ok: boolean; why: string }[]>;
}

/**
 * How long a crashed primary may take to come back in place before its agent releases the key: half
 * the TTL, and at least 2 s. A crash recovery takes a few hundred milliseconds here, more on a busy
 * host; the fast profile's half TTL (0.5 s) turned some into failovers that cost more than waiting.
 */
export const restartBudgetMs = (ha: HaSpec) => Math.max((ha.ttlSeconds * 1000) / 2, 2000);

/** A margin under the lease, for clock rates and the time a kill takes: 1/8 of the TTL, 0.5 s at most. */
export const leaseMarginMs = (ha: HaSpec) => Math.min(500, (ha.ttlSeconds * 1000) / 8);

/**
 * `pgrepl agent` for one node: each loop renews its lease, reads the cluster's keys in etcd and its
 * own server, decides (decideAgent) and acts on its own node only; between loops it sleeps
 * `loopWait`, but wakes at once when the leader key changes or its postmaster dies.
 */
export class Agent {
  private readonly store: HaStore;
  private readonly session: KeptSession;
  private readonly leases: LeaseKeeper;
  /**
   * A leader that cannot reach etcd asks every other member, over its agent's API, to confirm it
   * sees no other leader and will not promote (Patroni's failsafe). Only when all of them do may its
   * primary stay writable past its lease, until their promises could run out: a TTL from when it
   * asked, less the lease margin. A round that fails leaves the last promises to run out.
   */
  private async askFailsafe(): Promise<void> {
    const { ctx, ha, askFailsafe } = this.d;
    if (!askFailsafe) return;
    const sentAt = ctx.clock.now();
    const answers = await askFailsafe();
    const refused = answers.filter((a) => !a.ok);
    if (refused.length === 0) {
      this.failsafeUntil = sentAt + ha.ttlSeconds * 1000 - leaseMarginMs(ha);
      this.failingBefore.delete('failsafe');
      return;
    }
    this.failed('failsafe', new Error(refused.map((a) => `${a.node}: ${a.why}`).join('; ')));
  }

  /**
   * A member asked by `leader`, which cannot reach etcd, to promise not to promote (failsafe): it
   * does, for a TTL, unless it runs as a primary itself or the last it read of etcd is another node
   * holding the leader key. Returns why it refused, or null.
   */
  promiseFailsafe(leader: string): string | null {
    const me = this.d.node.name;
    if (leader === me) return `${me} is the node asking`;
    if (this.state.self?.local.kind === 'primary') return `${me} runs as a primary itself`;
    const seen = this.lastRead?.view.leader;
    if (seen && seen.node !== leader) return `${me} sees ${seen.node} holding the leader key`;
    this.promisedTo = { leader, until: this.d.ctx.clock.now() + this.d.ha.ttlSeconds * 1000 };
    return null;
  }

  /** What the last read of etcd that succeeded said (the API's state says null while etcd is down). */
  private lastRead: HaState | null = null;
  /**
   * A leader in failsafe: until when (monotonic) every other member's promise not to promote holds,
   * counted from when it asked; 0 without one.
   */
  private failsafeUntil = 0;
  /** A member: the leader it promised over its API not to promote against, and until when. */
  private promisedTo: { readonly leader: string; readonly until: number } | null = null;
  /**
   * The lease this agent last knew its leader key to be on (taken, adopted, or read so): while it
   * is, each renewal of that lease moves the watchdog's deadline with it, even mid-action.
   */
  private keyOnLease: string | null = null;
  private downSince: number | null = null;
  private restarting: Promise<void> | null = null;
  private leaderGoneAt: number | null = null;
  private lastLogged = '';
  private wake: (() => void) | null = null;
  private state: AgentState;
  /** What an operator asked and is under way (operate); the loop then only renews, observes and fences. */
  private operation: string | null = null;
  /** The switchover (its request's `at`) for which this agent, its target, made the others' slots. */
  private slotsMadeFor: number | null = null;
  /** The loop's actions and the operators' operations, one at a time. */
  private exclusive: Promise<unknown> = Promise.resolve();

  /** Aborted when the agent must end by itself: its node was removed. */
  private readonly retired = new AbortController();
  /** The spec file's mtime and size when it was last loaded. */
  private specStamp: string | null;
  /**
   * The leader's WAL position once its server ran the synchronous_standby_names of the spec it took
   * last (decideSyncSet); null until it has taken one.
   */
  private syncTakenAt: string | null = null;

  constructor(private d: AgentDeps) {
    this.specStamp = stampOf(d.ctx.spec.source);
    this.store = haStore(d.etcd, d.ctx.spec.cluster);
    this.leases = new LeaseKeeper({
      calls: this.store,
      clock: d.ctx.clock,
      ttlSeconds: d.ha.ttlSeconds,
      loopWaitMs: d.ha.loopWaitMs,
      retryTimeoutMs: d.ha.retryTimeoutMs,
      marginMs: leaseMarginMs(d.ha),
      onChange: (lease) => {
        if (lease !== null && lease.id === this.keyOnLease) this.d.fence.extend(lease.safeUntil);
        // A lost lease, or a first one: the loop looks at once.
        if (lease === null || this.state.leaseSafeUntil === 0) this.nudge();
      },
      onError: (err) => this.failed('renewing the lease', err),
    });
    const target = adminTarget(d.ctx, d.node);
    if (!target) requireSuperuserPassword(d.ctx);
    // A lost session most often means a dead postmaster: the loop looks at once.
    this.session = keptSession(target!, Math.min(1000, d.ha.retryTimeoutMs), () => this.nudge());
    this.state = {
      node: d.node.name,
      self: null,
      record: null,
      decision: null,
      ha: null,
      leaseSafeUntil: 0,
      lastLoopAt: 0,
      lastLoopMs: 0,
      etcdErrors: 0,
      promotions: { leader_lost: 0, operator: 0, switchover: 0 },
      lastFailoverMs: null,
    };
  }

  get current(): AgentState {
    return this.state;
  }

  /** The context and node the agent acts on now (the spec may have been re-read since it began). */
  get context(): { readonly ctx: ClusterContext; readonly node: NodeSpec } {
    return { ctx: this.d.ctx, node: this.d.node };
  }

  /** Ends the loop after this one: the agent then leaves as on SIGTERM. */
  retire(why: string): void {
    this.d.ctx.events.emit({ event: 'note', message: `agent of ${this.d.node.name}: ${why}` });
    this.retired.abort(why);
    this.nudge();
  }

  /**
   * Runs what an operator asked of this node (`what` names it in decisions and refusals), after the
   * loop's action in flight: meanwhile the loop goes on renewing the lease and fencing, and takes no
   * action of its own. One at a time: a second request is refused while the first runs.
   */
  async operate<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.operation !== null)
      throw new PgreplError(
        'E_BUSY',
        `${this.d.node.name}'s agent is busy with ${this.operation}; ask again when it is done`,
      );
    this.operation = what;
    try {
      return await this.oneAtATime(fn);
    } finally {
      this.operation = null;
      this.nudge();
    }
  }

  /** Makes the loop run now rather than at its next tick. */
  nudge(): void {
    this.woke = true;
    this.wake?.();
  }

  private oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.exclusive.then(fn);
    this.exclusive = run.catch(() => undefined);
    return run;
  }

  /** Loops until `stop` is aborted, then leaves as stopAgent() says. */
  async run(interrupted: AbortSignal): Promise<void> {
    const stop = AbortSignal.any([interrupted, this.retired.signal]);
    // The lease outlives the loop: leaving releases the key and revokes the lease under it.
    const renewals = new AbortController();
    await this.leases.start(renewals.signal);
    const watching = this.watchKeys(stop);
    const onStop = () => this.wake?.();
    stop.addEventListener('abort', onStop);
    try {
      while (!stop.aborted) {
        const began = this.d.ctx.clock.now();
        await this.loopOnce();
        await this.sleepUntilNext(began, stop);
      }
    } finally {
      stop.removeEventListener('abort', onStop);
      await this.leave();
      renewals.abort();
      await this.leases.stopped();
      await watching;
    }
  }

  /** One loop: lease, etcd, own server, decision, action, record. */
  async loopOnce(): Promise<AgentDecision> {
    const { ctx, node, ha } = this.d;
    const began = ctx.clock.now();
    // What failed in the last loop and not since is told again if it fails again.
    this.failingBefore = new Set(
      [...this.failingBefore].filter((f) => this.failingNow.has(f) || f === 'watching etcd'),
    );
    this.failingNow = new Set();
    await this.followSpec();
    let haState: HaState | null = null;
    try {
      haState = await this.store.read();
      this.checkWatch(haState);
      await this.adoptOwnLeaderKey(haState);
      this.keyOnLease = this.heldIn(haState) ? (this.lease?.id ?? null) : null;
    } catch (err) {
      this.failed('reading etcd', err);
    }
    const self = await observeSelf(ctx, node, this.session);
    const leader = haState?.view.leader ?? null;
    if (haState !== null && leader === null && this.lastRead?.view.leader && this.leaderGoneAt === null)
      this.leaderGoneAt = began;
    if (leader?.ready && leader.node !== node.name) this.leaderGoneAt = null;
    const holds = leader?.node === node.name;
    const down = self.local.kind === 'stopped' || self.local.kind === 'starting';
    this.downSince = holds && down ? (this.downSince ?? began) : null;
    if (haState !== null) this.failsafeUntil = 0;
    else if (ha.failsafe && self.local.kind === 'primary' && this.heldAtLastRead()) await this.askFailsafe();
    const lease = this.lease;
    const before = {
      me: node.name,
      now: ctx.clock.now(),
      wallNow: ctx.clock.wallNow(),
      mode: ctx.spec.replication.mode,
      maximumLagOnFailover: ha.maximumLagOnFailover,
      failoverPriority: node.failoverPriority,
      noFailover: node.noFailover,
      specIndex: ctx.spec.nodes.indexOf(node),
      loopWaitMs: ha.loopWaitMs,
      local: self.local,
      dcs: haState?.view ?? null,
      leaseSafeUntil: lease?.safeUntil ?? 0,
      leaseId: lease?.id ?? null,
      heldAtLastRead: this.heldAtLastRead(),
      failsafe: ha.failsafe,
      failsafeUntil: this.failsafeUntil,
      promisedTo: this.promisedTo,
      downSince: this.downSince,
      restartBudgetMs: restartBudgetMs(ha),
      operation: this.operation,
      slotsMadeFor: this.slotsMadeFor,
    };
    const peers: Peer[] =
      haState !== null && needsPeers(before)
        ? await observePeers(ctx, node.name, haState.members, Math.min(1000, ha.retryTimeoutMs))
        : [];
    // Asking the peers takes up to a second: the time and the lease are read again after it.
    const now = this.lease;
    const snapshot: AgentSnapshot = {
      ...before,
      peers,
      now: ctx.clock.now(),
      wallNow: ctx.clock.wallNow(),
      leaseSafeUntil: now?.safeUntil ?? 0,
      leaseId: now?.id ?? null,
    };
    const decision = decideAgent(snapshot);
    this.logChange(self, leader?.node ?? null, decision);
    try {
      // An operation asked after this snapshot goes first; a fence never waits for one.
      if (decision.kind === 'fence') await this.act(decision, haState, self);
      else if (this.operation === null && decision.kind !== 'wait')
        await this.oneAtATime(() => this.act(decision, haState, self));
      // The server is not what this loop observed: the next loop, at once, observes and reports it.
      if (SERVER_CHANGES.has(decision.kind)) this.woke = true;
    } catch (err) {
      this.failed(decision.kind, err);
    }
    this.guardPrimary(self, decision, holds);
    const record = this.memberRecord(self, decision, haState);
    await this.publish(record);
    // What the API answers must include the key this loop took, gave up or announced.
    if (KEY_CHANGES.has(decision.kind) && this.lease) haState = await this.store.read().catch(() => haState);
    if (haState !== null) this.lastRead = haState;
    this.state = {
      ...this.state,
      self,
      record,
      decision,
      ha: haState,
      leaseSafeUntil: this.lease?.safeUntil ?? 0,
      lastLoopAt: began,
      lastLoopMs: ctx.clock.now() - began,
    };
    return decision;
  }

  /**
   * Whether, as far as etcd last said, the leader key is on this agent's lease (the lease it had
   * then: during an outage the keeper gives the lease up once it could have run out).
   */
  private heldAtLastRead(): boolean {
    return this.keyOnLease !== null;
  }

  private heldIn(s: HaState): boolean {
    const leader = s.view.leader;
    return leader?.node === this.d.node.name && leader.lease === this.lease?.id;
  }

  /** The lease while it is sure to live (the keeper renews it on a timer of its own). */
  private get lease(): HeldLease | null {
    return this.leases.current;
  }

  /**
   * A restarted agent finds the leader key it held under its previous lease: it takes that lease
   * over, rather than let it run out under a healthy primary. Then the key is on its lease.
   */
  private async adoptOwnLeaderKey(s: HaState): Promise<void> {
    if (s.view.leader?.node !== this.d.node.name || !s.leaderLease) return;
    await this.leases.adopt(s.leaderLease);
  }

  /** This agent's lease id, for a fenced write; '0' (which no key lives on) without one. */
  private get leaseId(): string {
    return this.lease?.id ?? '0';
  }

  private async act(decision: AgentDecision, s: HaState | null, self: SelfObservation): Promise<void> {
    const { ctx, node } = this.d;
    const control = controlOf(ctx, node);
    const lease = this.leaseId;
    switch (decision.kind) {
      case 'take-key': {
        const taken = await this.store.takeLeader({
          node: node.name,
          lease,
          ready: true,
          followable: true,
          sync: this.syncSetToRecord(),
        });
        if (taken) this.keyOnLease = lease;
        return;
      }
      case 'race': {
        // A switchover target that made every slot already may be streamed from at once.
        const sw = s?.view.switchover;
        const followable = sw?.to === node.name && this.slotsMadeFor === sw.at;
        // The synchronous set goes with the key: recorded before this server can acknowledge a
        // commit, in one etcd write rather than two on the way to the promotion.
        const won = await this.store.takeLeader({
          node: node.name,
          lease,
          ready: false,
          followable,
          sync: this.syncSetToRecord(),
        });
        if (won) {
          this.keyOnLease = lease;
          await this.promoteSelf(s);
        }
        return;
      }
      case 'promote': {
        // Holding the key already: the synchronous set is recorded before the promotion, in a write
        // fenced by the key. A key lost meanwhile records nothing and promotes nothing.
        const set = this.syncSetToRecord();
        if (set !== null && !(await this.store.recordSyncSet(lease, set)))
          throw new PgreplError('E_NOT_LEADER', 'the leader key is no longer on my lease: not promoting');
        return this.promoteSelf(s);
      }
      case 'announce':
        await this.announce(s);
        return;
      case 'restart': {
        // One start at a time, waited for at most a quarter of the TTL: a long crash recovery must
        // not hold up the loop that renews the lease; the next loops see it starting, and release
        // the key if it takes too long.
        if (this.restarting === null) this.armBeforePrimary(null);
        this.restarting ??= control
          .start()
          .catch((err: unknown) => this.failed('restarting the primary', err))
          .finally(() => (this.restarting = null));
        await Promise.race([this.restarting, this.d.ctx.clock.sleep((this.d.ha.ttlSeconds * 1000) / 4)]);
        return;
      }
      case 'release':
        await control.fence();
        await this.store.releaseLeader(lease);
        this.keyOnLease = null;
        return;
      case 'fence':
        await control.fence();
        return;
      case 'hand-over':
        return this.handOver(decision.to, s);
      case 'await-wal':
        return this.awaitWal(decision.lsn);
      case 'follow': {
        const upstream = nodeOf(ctx, decision.upstream);
        await repoint(ctx, node, upstream);
        // Moved to a switchover target: the leader stops once this node's record says it streams.
        if (s?.view.switchover?.to === upstream.name) await this.awaitStreamingFrom(upstream);
        return;
      }
      case 'start-replica':
        makeStandby(ctx, node, nodeOf(ctx, decision.leader));
        return control.start();
      case 'rejoin':
        await runRejoin(ctx, node.name, { reclone: false });
        return;
      case 'make-slots':
        // While still a standby: they exist before any replica is told to stream from here.
        await this.session.use((session) => createSlotsFor(ctx, node, session));
        this.slotsMadeFor = decision.for;
        return;
      case 'drop-slots':
        await dropSlotsOnStandby(ctx, node);
        this.slotsMadeFor = null;
        return;
      case 'lead':
        if (s === null) return;
        await this.recordLeaderPosition(self, s.view.lastLeaderLsn);
        await this.followSyncSet(s, self);
        return;
      case 'wait':
        return;
    }
  }

  /**
   * Promotes its server under the key it won, makes every slot, then lets the replicas follow. The
   * caller has recorded the synchronous set: before the primary can acknowledge a commit with it.
   */
  private async promoteSelf(s: HaState | null): Promise<void> {
    const { ctx, node } = this.d;
    this.armBeforePrimary(controlOf(ctx, node).state().pid);
    // The kept connection: a new one would put a SCRAM exchange into the write gap.
    await this.session.use(async (session) => {
      await promote(ctx, node, session);
      await createSlotsFor(ctx, node, session);
    });
    const ms = this.leaderGoneAt === null ? null : ctx.clock.now() - this.leaderGoneAt;
    const promoted = await this.announce(s);
    // Until its first checkpoint on the new timeline, its control file points into the old one,
    // whose last segment promotion renamed to .partial: dying before then, it could not be rewound
    // (pg_rewind looks for that segment) and is re-cloned. The timed checkpoint can be minutes away,
    // so ask for one now, on a connection of its own, leaving the loop's connection free.
    void sqlOn(ctx, node, (q) => q.query('CHECKPOINT'), undefined, CHECKPOINT_MS).catch((err: unknown) =>
      this.failed('the checkpoint after promotion', err),
    );
    const from = s?.view.lastLeaderLsn ?? null;
    const op = s?.view.switchover?.to === node.name ? 'switchover' : 'failover';
    const why: PromotionReason =
      op === 'switchover' ? 'switchover' : s?.view.failover?.to === node.name ? 'operator' : 'leader_lost';
    this.state = {
      ...this.state,
      promotions: { ...this.state.promotions, [why]: this.state.promotions[why] + 1 },
      lastFailoverMs: ms,
    };
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
            : s?.view.failover?.to === node.name
              ? `failover to ${node.name} asked by an operator (\`pgrepl promote\`${s.view.failover.force ? ' --force' : ''}); no one held the leader key`
              : `the leader key of ${from?.node ?? 'the old leader'} expired or was released; ${node.name} was the most advanced eligible replica`,
      })
      .catch((err: unknown) => this.failed(`recording the ${op}`, err));
  }

  /**
   * A switchover: refuses a target that cannot take over (recording why, for the operator), else
   * stops the server cleanly (its walsenders send the shutdown checkpoint to the replicas before
   * they exit), records where that checkpoint starts, and gives up the key: the target races once
   * it holds the checkpoint, so no acknowledged commit is lost and this node rejoins without a rewind.
   */
  private async handOver(to: string, s: HaState | null): Promise<void> {
    const { ctx, node } = this.d;
    const sw = s?.view.switchover;
    if (!sw) return;
    const request = { from: sw.from, to: sw.to, at: sw.at };
    const target = s.members.get(to);
    const refusal = !target
      ? `${to} has no agent running`
      : target.role !== 'replica'
        ? `${to} is not a running replica (${target.role})`
        : target.problem;
    if (refusal) {
      await this.store.refuseSwitchover(this.leaseId, request, refusal);
      return;
    }
    const control = controlOf(ctx, node);
    // A checkpoint first leaves little for the shutdown checkpoint to write: a shorter write gap.
    // Its own connection: a checkpoint under load may outlast the kept session's query timeout.
    // Bounded: one that takes longer is left to the shutdown checkpoint, which writes what it did not.
    await sqlOn(ctx, node, (q) => q.query('CHECKPOINT'), undefined, CHECKPOINT_MS).catch((err: unknown) =>
      this.failed('the checkpoint before handing over', err),
    );
    // The key goes the moment the shutdown checkpoint is written, not once the postmaster is gone
    // (its walsenders sending that record and exiting took 20–70 ms more here, all in the write gap).
    const stopped = await control.shutDownCleanly();
    if (stopped.state !== 'shut down') {
      // No clean end: the target may lack commits, so no switchover; the agents fail over as
      // after a crash, under the rules of any failover.
      const refused = `${node.name} did not shut down cleanly (its control file says "${stopped.state}"): no switchover`;
      await this.store.releaseLeader(this.leaseId, { refused: { request, reason: refused } });
      this.keyOnLease = null;
    } else {
      const position = {
        lsn: stopped.checkpointLsn,
        timeline: stopped.timeline,
        node: node.name,
        shutdownCheckpoint: true,
      };
      await this.store.releaseLeader(this.leaseId, { position });
      this.keyOnLease = null;
    }
    await control.stop('fast');
  }

  /**
   * A switchover target waits until its server holds WAL past `lsn`: the old leader's shutdown
   * checkpoint, on its way from the walsender.
   */
  private awaitWal(lsn: string): Promise<void> {
    const want = parseLsn(lsn);
    return this.pollOwnServer(async (session) => {
      const p = await readReplayProgress(session);
      const at = replicaPosition({ receiveLsn: p.receive, replayLsn: p.replay });
      return at !== null && parseLsn(at) > want;
    });
  }

  /** A replica moved to a switchover target waits until its WAL receiver streams from it. */
  private awaitStreamingFrom(upstream: NodeSpec): Promise<void> {
    return this.pollOwnServer(async (session) => {
      const r = await readWalReceiver(session);
      return r?.status === 'streaming' && r.senderPort === upstream.port && r.senderHost === upstream.host;
    });
  }

  /**
   * Polls its own server every 2 ms over the kept session until `done`, for at most
   * AWAIT_OWN_SERVER_MS; the loop then runs again at once, rather than sleep, to act on it.
   */
  private async pollOwnServer(done: (session: SqlSession) => Promise<boolean>): Promise<void> {
    const until = this.d.ctx.clock.now() + AWAIT_OWN_SERVER_MS;
    try {
      await this.session.use(async (session) => {
        while (this.d.ctx.clock.now() < until && !(await done(session))) await this.d.ctx.clock.sleep(2);
      });
    } finally {
      this.woke = true;
    }
  }

  /** Marks the key ready and records the leader's position; returns the server as it then is. */
  private async announce(s: HaState | null): Promise<SelfObservation> {
    if (!(await this.store.announceLeader(this.d.node.name, this.leaseId, null)))
      throw new PgreplError('E_NOT_LEADER', 'the leader key is no longer on my lease: not announcing');
    this.leaderGoneAt = null;
    const self = await observeSelf(this.d.ctx, this.d.node, this.session);
    await this.recordLeaderPosition(self);
    // A switchover to this node is done.
    if (s?.view.switchover?.to === this.d.node.name) await this.store.finishSwitchover(this.leaseId);
    return self;
  }

  /**
   * Re-reads the spec when its file changed: a node that left it retires this agent; otherwise the
   * agent acts on the new spec from now on, and renders its own node's files anew (pg_hba,
   * synchronous_standby_names), which its server re-reads at once.
   */
  private async followSpec(): Promise<void> {
    const stamp = stampOf(this.d.ctx.spec.source);
    if (!this.d.reload || stamp === null || stamp === this.specStamp) return;
    this.specStamp = stamp;
    let ctx: ClusterContext;
    try {
      ctx = await this.d.reload();
    } catch (err) {
      this.failed('re-reading the spec (the agent goes on with the one it has)', err);
      return;
    }
    const node = ctx.spec.nodes.find((n) => n.name === this.d.node.name);
    if (!node) {
      this.retire(`${this.d.node.name} is no longer in ${ctx.spec.source}: the agent stops`);
      return;
    }
    this.d = { ...this.d, ctx, node };
    ctx.events.emit({
      event: 'note',
      message: `agent of ${node.name}: ${ctx.spec.source} changed; acting on it`,
    });
    const local = this.state.self?.local.kind;
    const leader = this.lastRead?.view.leader?.node;
    try {
      await this.oneAtATime(async () => {
        if (local === 'primary') {
          await this.recordSyncSetBefore();
          await renderPrimary(ctx, node);
          this.syncTakenAt = await this.session.use((q) => syncSettingTakenAt(ctx, node, q));
        } else if (local === 'replica' && leader && leader !== node.name)
          await repoint(ctx, node, nodeOf(ctx, leader));
      });
    } catch (err) {
      this.failed('rendering the node for the new spec', err);
      // Not done: the next loop takes the spec again.
      this.specStamp = null;
    }
  }

  /**
   * Before the server is told of the spec just taken: records a synchronous set that asks at least
   * as much of a candidate as the recorded one (or a bridge over both), so that a failover never
   * judges candidates by a record that asks less than the setting in force (decideSyncSet). One
   * that asks less is recorded after, once it is safe (followSyncSet).
   */
  private async recordSyncSetBefore(): Promise<void> {
    const { ctx } = this.d;
    if (ctx.spec.replication.mode === 'async') return;
    const d = decideSyncSet({
      recorded: this.lastRead?.view.sync ?? null,
      desired: this.syncSet(),
      takenAt: null,
      flushed: new Map(),
    });
    if (d.kind === 'record' && !(await this.store.recordSyncSet(this.leaseId, d.set)))
      throw new PgreplError('E_NOT_LEADER', 'the leader key is no longer on my lease: the spec waits');
  }

  /** The leader records the synchronous standbys of its spec once it is safe (decideSyncSet). */
  private async followSyncSet(s: HaState, self: SelfObservation): Promise<void> {
    const { ctx, node } = this.d;
    if (ctx.spec.replication.mode === 'async') return;
    const d = decideSyncSet({
      recorded: s.view.sync,
      desired: this.syncSet(),
      takenAt: this.syncTakenAt,
      flushed: self.flushed,
    });
    if (d.kind !== 'record' || !(await this.store.recordSyncSet(this.leaseId, d.set))) return;
    ctx.events.emit({
      event: 'note',
      message: `agent of ${node.name}: synchronous standbys recorded: ${d.reason}`,
    });
  }

  private syncSet(): SyncSet {
    const { ctx, node } = this.d;
    const standbys = ctx.spec.nodes.filter((n) => n.name !== node.name).map((n) => n.name);
    return { count: ctx.spec.replication.syncCount, standbys };
  }

  /**
   * The standbys a new leader records as those that may acknowledge commits (every other node, as
   * its synchronous_standby_names lists them): none in async mode.
   */
  private syncSetToRecord(): SyncSet | null {
    return this.d.ctx.spec.replication.mode === 'async' ? null : this.syncSet();
  }

  /** Records the leader's position, unless etcd holds it already (`known`: what this loop read). */
  private async recordLeaderPosition(self: SelfObservation, known?: DcsView['lastLeaderLsn']): Promise<void> {
    if (self.local.kind !== 'primary' || self.local.lsn === null) return;
    if (
      known?.lsn === self.local.lsn &&
      known.timeline === self.local.timeline &&
      known.node === this.d.node.name
    )
      return;
    await this.store.recordPosition(this.leaseId, {
      lsn: self.local.lsn,
      timeline: self.local.timeline,
      node: this.d.node.name,
    });
  }

  /**
   * Arms the fence watchdog while a postmaster here may take writes (it runs and is not known to
   * be a replica): it must be gone by the time the lease could run out. Disarms it otherwise.
   */
  private guardPrimary(before: SelfObservation, decision: AgentDecision, holds: boolean): void {
    const { ctx, node, fence } = this.d;
    fence.ensureRunning();
    const pid = controlOf(ctx, node).state().pid;
    this.guardedPid = pid;
    const stillReplica =
      before.local.kind === 'replica' &&
      before.pid === pid &&
      decision.kind !== 'race' &&
      decision.kind !== 'promote';
    const standby = ['follow', 'start-replica', 'rejoin'].includes(decision.kind);
    // Until its lease could run out, or, in failsafe, every member's promise.
    const until = Math.max(this.lease?.safeUntil ?? 0, this.failsafeUntil) || ctx.clock.now();
    if (stillReplica || standby) fence.disarm();
    else if (pid !== null) fence.arm(until, pid);
    // A leader whose primary is being started in place (a crash restart, an operator's restart)
    // stays fenced while no PID is known.
    else if (holds && (this.restarting !== null || this.operation === 'restart')) fence.arm(until, null);
    else fence.disarm();
  }

  /** The postmaster guardPrimary last saw: the one the sleep after it watches. */
  private guardedPid: number | null = null;

  /**
   * Arms the watchdog before this agent makes its server a primary, not after: an agent killed
   * between the two must not leave a primary that nothing fences. `pid` null: a server about to be
   * started, whose PID is not known yet (the watchdog then kills whichever owns the directory).
   */
  armBeforePrimary(pid: number | null): void {
    this.d.fence.ensureRunning();
    this.d.fence.arm(this.lease?.safeUntil ?? this.d.ctx.clock.now(), pid);
  }

  /** What this agent says of its node this loop: published in etcd, and read by its own checks. */
  private memberRecord(self: SelfObservation, decision: AgentDecision, s: HaState | null): MemberRecord {
    const last = s?.view.lastLeaderLsn?.lsn ?? null;
    const local = self.local;
    const lsn = local.kind === 'primary' ? local.lsn : local.kind === 'replica' ? local.positionLsn : null;
    return {
      node: this.d.node.name,
      role: local.kind,
      timeline: local.kind === 'primary' || local.kind === 'replica' ? local.timeline : null,
      lsn,
      replayLsn: local.kind === 'replica' ? local.replayLsn : null,
      lagBytes: local.kind === 'replica' ? nonNegative(lsnDiff(last, lsn)) : null,
      problem: local.kind === 'replica' ? local.problem : null,
      upstream: local.kind === 'replica' ? local.upstream : null,
      streaming: local.kind === 'replica' && local.streaming,
      slotsFor: this.slotsMadeFor,
      syncStandbys: self.syncStandbys,
      quorumStandbys: self.quorumStandbys,
      replayLagBytes: local.kind === 'replica' ? nonNegative(lsnDiff(last, local.replayLsn)) : null,
      decision: decision.kind,
      reason: decision.reason,
      api: this.d.api,
      pid: process.pid,
      at: Date.now(),
    };
  }

  private async publish(record: MemberRecord): Promise<void> {
    if (!this.lease) return;
    // The record lives on the lease: it is written again only when it says something new, or
    // every PUBLISH_AT_LEAST_MS so that its time stays recent, or under a new lease.
    const text = JSON.stringify({ ...record, at: 0 });
    const before = this.published;
    if (
      before?.text === text &&
      before.lease === this.lease.id &&
      record.at - before.at < PUBLISH_AT_LEAST_MS
    )
      return;
    await this.store
      .publishMember(record, this.lease.id)
      .then(() => (this.published = { text, lease: this.lease?.id ?? '', at: record.at }))
      .catch((err: unknown) => this.failed('publishing the member record', err));
  }

  private published: { text: string; lease: string; at: number } | null = null;

  /** The watch on the postmaster the loop saw, kept from loop to loop while it is the same one. */
  private watchPostmaster(pid: number | null): ProcessWatch | null {
    if (this.postmasterWatch?.pid !== pid) {
      this.postmasterWatch?.close();
      this.postmasterWatch = pid === null ? null : watchProcess(pid);
    }
    return this.postmasterWatch;
  }

  private postmasterWatch: ProcessWatch | null = null;

  /** Sleeps `loopWait` from `began`, or less: a change of the leader or pause key, or a dead postmaster, wakes it. */
  private async sleepUntilNext(began: number, stop: AbortSignal): Promise<void> {
    const { ctx, ha } = this.d;
    const deadline = began + ha.loopWaitMs;
    // Read a moment ago; one that has died since only ends this sleep early.
    const watched = this.watchPostmaster(this.guardedPid);
    while (!stop.aborted && ctx.clock.now() < deadline) {
      // A change that came while the loop ran (the new leader's key, say) is acted on at once.
      if (this.woke) {
        this.woke = false;
        return;
      }
      const woken = new Promise<void>((r) => (this.wake = r));
      await Promise.race([woken, ctx.clock.sleep(Math.min(POSTMASTER_POLL_MS, deadline - ctx.clock.now()))]);
      this.wake = null;
      // A postmaster that died ends the kept session, which wakes this loop; the poll is for one
      // that died while no session was open.
      if (watched !== null && !watched.alive()) return;
    }
    this.woke = false;
  }

  private woke = false;

  /** The watch open now: how to end it, the newest change it delivered, since when reads are ahead. */
  private watch: { reopen: AbortController; delivered: number; behindSince: number | null } = {
    reopen: new AbortController(),
    delivered: Number.MAX_SAFE_INTEGER,
    behindSince: null,
  };

  /** Ends a watch that has missed a change this loop's read saw for too long; watchKeys opens a new one. */
  private checkWatch(s: HaState): void {
    const w = this.watch;
    const { behindSince, stale } = watchStaleness({
      readRevision: s.changedRevision,
      deliveredRevision: w.delivered,
      behindSince: w.behindSince,
      now: this.d.ctx.clock.now(),
      limitMs: Math.max(1000, 2 * this.d.ha.loopWaitMs),
    });
    w.behindSince = behindSince;
    if (!stale) return;
    this.failed(
      'watching etcd',
      new Error(
        `the watch delivered nothing past revision ${w.delivered} while reads saw ${s.changedRevision}: opening it anew`,
      ),
    );
    w.reopen.abort();
  }

  private async watchKeys(stop: AbortSignal): Promise<void> {
    const me = this.d.node.name;
    while (!stop.aborted) {
      // Its own signal: a watch the loop finds stale (watchStaleness) is ended and opened anew.
      const reopen = new AbortController();
      this.watch = { reopen, delivered: Number.MAX_SAFE_INTEGER, behindSince: null };
      try {
        const after = await this.store.revision();
        this.watch.delivered = after;
        this.failingBefore.delete('watching etcd');
        await this.store.watch(after, AbortSignal.any([stop, reopen.signal]), (events) => {
          for (const e of events) this.watch.delivered = Math.max(this.watch.delivered, e.kv.modRevision);
          const seen = events.map((e) => this.store.classify(e, me));
          // During a switchover the others' records tell who streams from the target, and when.
          const sw = this.state.ha?.view.switchover ?? null;
          if (!seen.some((e) => e.kind === 'control' || (e.kind === 'member' && sw !== null))) return;
          if (seen.some((e) => e.kind === 'control' && e.leaderGone))
            this.leaderGoneAt ??= this.d.ctx.clock.now();
          this.nudge();
        });
      } catch (err) {
        this.failed('watching etcd', err);
      }
      if (!stop.aborted) await this.d.ctx.clock.sleep(this.d.ha.loopWaitMs, stop).catch(() => undefined);
    }
  }

  /**
   * A clean stop (SIGTERM): a leader stops its server first and then gives up the key, so that a
   * replica takes over at once without a second primary; a replica's server is left running.
   */
  private async leave(): Promise<void> {
    const { ctx, node, fence } = this.d;
    this.watchPostmaster(null);
    try {
      // Paused, the operator owns the servers: the agent goes and leaves its server as it is.
      if (this.lastRead?.view.paused) {
        fence.close();
        await this.leases.revoke();
        return;
      }
      if (this.lastRead?.view.leader?.node === node.name && this.lease) {
        await controlOf(ctx, node).fence();
        await this.store.releaseLeader(this.lease.id);
      }
      await this.leases.revoke();
    } catch (err) {
      this.failed('leaving', err);
    } finally {
      if (controlOf(ctx, node).state().pid === null || this.state.self?.local.kind === 'replica')
        fence.close();
      this.session.close();
    }
  }

  private logChange(self: SelfObservation, leader: string | null, d: AgentDecision): void {
    const key = `${d.kind}|${leader}|${self.local.kind}`;
    if (key === this.lastLogged) return;
    this.lastLogged = key;
    const local = self.local;
    this.d.ctx.events.emit({
      event: 'agent',
      node: this.d.node.name,
      role: local.kind,
      timeline: local.kind === 'primary' || local.kind === 'replica' ? local.timeline : null,
      leader,
      decision: d.kind,
      reason: d.reason,
    });
  }

  /**
   * Logs a failure once, not every loop while it lasts (etcd down would write a line per loop);
   * the same failure is told again only after a loop without it.
   */
  private failed(during: string, err: unknown): void {
    if (err instanceof PgreplError && err.code === 'E_ETCD')
      this.state = { ...this.state, etcdErrors: this.state.etcdErrors + 1 };
    this.failingNow.add(during);
    if (this.failingBefore.has(during)) return;
    this.failingBefore.add(during);
    const error = err instanceof PgreplError || err instanceof Error ? err.message : String(err);
    this.d.ctx.events.emit({ event: 'agent-error', node: this.d.node.name, during, error });
  }

  private failingBefore = new Set<string>();
  private failingNow = new Set<string>();
}

/** The spec file's mtime and size; null when there is no file (the embedded default). */
function stampOf(file: string): string | null {
  try {
    const st = statSync(file);
    return `${st.mtimeMs}:${st.size}`;
  } catch {
    return null;
  }
}

/**
 * How often a sleeping loop asks whether its postmaster still runs. Polling every 0.1 s was a tenth
 * of an idle agent's CPU; the kept session's end tells of a death sooner.
 */
const POSTMASTER_POLL_MS = 500;

/** How long a switchover step polls its own server (for WAL, for streaming) before the loop runs again. */
const AWAIT_OWN_SERVER_MS = 1000;

/** How long the agent waits for a CHECKPOINT it asks for (before a hand-over, after a promotion). */
const CHECKPOINT_MS = 30_000;

/** An unchanged member record is written again after this long. */
const PUBLISH_AT_LEAST_MS = 10_000;

/** Decisions whose action starts, stops, re-points or rebuilds the server. */
const SERVER_CHANGES: ReadonlySet<AgentDecision['kind']> = new Set([
  'restart',
  'release',
  'fence',
  'follow',
  'start-replica',
  'rejoin',
]);

/** Decisions after which the leader key is not what this loop read. */
const KEY_CHANGES: ReadonlySet<AgentDecision['kind']> = new Set([
  'take-key',
  'race',
  'promote',
  'announce',
  'release',
]);

/** A replica ahead of the leader's last record (recorded a loop ago) is not behind at all. */
const nonNegative = (d: number | null) => (d === null ? null : Math.max(0, d));
