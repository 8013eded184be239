import { PgreplError } from '../errors.js';
import { keptSession } from '../postgres/sql-client.js';
import type { KeptSession } from '../postgres/sql-client.js';
import type { HaSpec, NodeSpec } from '../cluster-spec/cluster-spec.js';
import { adminTarget, requireSuperuserPassword } from '../cluster/context/cluster-context.js';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { controlOf } from '../cluster/actions/control-of.js';
import { DECISIONS } from '../cluster/decide/agent-decisions.js';
import { decideAgent, needsPeers, promotionSetback } from '../cluster/decide/decide-agent.js';
import type { AgentDecision, AgentSnapshot, Peer } from '../cluster/decide/decide-agent.js';
import { haStore } from '../dcs/ha-store.js';
import type { HaStore } from '../dcs/ha-store.js';
import type { HaState } from '../dcs/ha-values.js';
import { agentExecutors } from './agent-executors.js';
import type { ExecutorHost } from './agent-executors.js';
import { initialAgentState, leaseMarginMs, restartBudgetMs } from './agent-state.js';
import type { AgentDeps, AgentState, PromotionReason } from './agent-state.js';
import { EtcdWatch } from './etcd-watch.js';
import { withEtcdBudget } from '../dcs/etcd-budget.js';
import { Failsafe } from './failsafe.js';
import { AgentLog } from './agent-log.js';
import { FenceGuard } from './fence-guard.js';
import { LoopPacer } from './loop-pacer.js';
import { LeaseKeeper } from './lease-keeper.js';
import type { HeldLease } from './lease-keeper.js';
import { memberRecord, MemberPublisher } from './member-record.js';
import { observePeers, observeSelf } from './observe-self.js';
import type { SelfObservation } from './observe-self.js';
import { RaftLeaderPlacement } from './raft-leader-placement.js';
import { SpecFollower } from './spec-follower.js';

export type { AgentDeps, AgentState, PromotionReason } from './agent-state.js';
export { leaseMarginMs, restartBudgetMs } from './agent-state.js';

/**
 * `pgrepl agent` for one node: each loop reads the cluster's keys in etcd and its own server,
 * decides (decideAgent) and acts on its own node only (agentExecutors); between loops it sleeps
 * `loopWait`, but wakes at once when the leader key changes or its postmaster dies. Its lease is
 * renewed on a timer of its own (LeaseKeeper), whatever the loop is doing.
 */
export class Agent {
  private readonly store: HaStore;
  private readonly session: KeptSession;
  private readonly leases: LeaseKeeper;
  private readonly raftLeader: RaftLeaderPlacement;
  private readonly failsafe: Failsafe;
  private readonly watch: EtcdWatch;
  private readonly spec: SpecFollower;
  private readonly publisher: MemberPublisher;
  private readonly execute: ReturnType<typeof agentExecutors>;
  /** What the executors share with the loop: the state they read and change. */
  private readonly host: ExecutorHost;
  /** What the last read of etcd that succeeded said (the API's state says null while etcd is down). */
  private lastRead: HaState | null = null;
  private downSince: number | null = null;
  /** The pending switchover request (its `at`, an ID here) and when this agent first saw it. */
  private switchoverSeen: { readonly at: number; readonly since: number } | null = null;
  private readonly pace = new LoopPacer(() => this.d.ctx.clock);
  private state: AgentState;
  /** What an operator asked and is under way (operate); the loop then only observes and fences. */
  private operation: string | null = null;
  /** The loop's actions and the operators' operations, one at a time. */
  private exclusive: Promise<unknown> = Promise.resolve();
  /** Aborted when the agent must end by itself: its node was removed. */
  private readonly retired = new AbortController();
  private readonly guard: FenceGuard;
  private readonly log: AgentLog;
  /** The last action that failed, and when: decideAgent paces the heavy ones. */
  private lastFailure: AgentSnapshot['lastFailure'] = null;
  /** When the agent began: how long it has waited for an earlier node to initialize the cluster. */
  private readonly startedAt: number;

  constructor(private d: AgentDeps) {
    const { ctx, ha } = d;
    this.store = haStore(d.etcd, ctx.spec.cluster);
    const target = adminTarget(ctx, d.node);
    if (!target) requireSuperuserPassword(ctx);
    // A lost session most often means a dead postmaster: the loop looks at once.
    this.session = keptSession(target!, Math.min(1000, ha.retryTimeoutMs), () => this.nudge());
    this.state = initialAgentState(d.node.name);
    this.startedAt = ctx.clock.now();
    this.log = new AgentLog({
      node: () => this.d.node.name,
      events: () => this.d.ctx.events,
      etcdError: () => (this.state = { ...this.state, etcdErrors: this.state.etcdErrors + 1 }),
      tracing: d.trace === true,
    });
    const failed = (during: string, err: unknown) => this.log.failed(during, err);
    const recovered = (during: string) => this.log.recovered(during);
    this.leases = new LeaseKeeper({
      calls: this.store,
      clock: ctx.clock,
      ttlSeconds: ha.ttlSeconds,
      loopWaitMs: ha.loopWaitMs,
      retryTimeoutMs: ha.retryTimeoutMs,
      marginMs: leaseMarginMs(ha),
      onChange: (lease) => {
        this.log.trace(
          lease === null
            ? 'lease lost (it could have run out)'
            : `lease ${lease.id} safe for ${lease.safeUntil - ctx.clock.now()} ms`,
        );
        // While the key lives on this lease, its watchdog deadline moves with each renewal.
        if (lease !== null) this.guard.extend();
        // A lost lease, or a first one: the loop looks at once.
        if (lease === null || this.state.leaseSafeUntil === 0) this.nudge();
      },
      onError: (err) => {
        failed('renewing the lease', err);
        void this.failsafe.renewalFailed();
      },
    });
    this.raftLeader = new RaftLeaderPlacement({
      etcd: d.etcd,
      clock: ctx.clock,
      host: () => this.d.node.host,
      moved: (reason) => this.d.ctx.events.emit({ event: 'action', node: this.d.node.name, message: reason }),
      failed: (err) => failed("moving etcd's raft leader", err),
    });
    this.failsafe = new Failsafe({
      me: d.node.name,
      ha,
      clock: ctx.clock,
      askPeers: d.askFailsafe,
      localKind: () => this.state.self?.local.kind,
      lastRead: () => this.lastRead,
      holdsKey: () => this.host.keyOnLease !== null,
      promised: () => this.guard.extend(),
      failed,
      recovered,
    });
    this.watch = new EtcdWatch({
      store: this.store,
      me: d.node.name,
      clock: ctx.clock,
      loopWaitMs: ha.loopWaitMs,
      switchoverPending: () => (this.state.ha?.view.switchover ?? null) !== null,
      changed: (leaderGone) => {
        if (leaderGone) this.host.leaderGoneAt ??= this.d.ctx.clock.now();
        this.nudge();
      },
      failed,
      recovered,
    });
    // One view of the agent for its parts, read as it is when asked (the spec may be re-read, the
    // lease renewed); the executors set the fields the loop reads back.
    const agent = () => this;
    const live = {
      get ctx() {
        return agent().d.ctx;
      },
      get node() {
        return agent().d.node;
      },
      get reload() {
        return agent().d.reload;
      },
      ha,
      store: this.store,
      session: this.session,
      fence: d.fence,
      get leaseId() {
        return agent().leaseId;
      },
      get lease() {
        return agent().lease;
      },
      get lastRead() {
        return agent().lastRead;
      },
      get localKind() {
        return agent().state.self?.local.kind;
      },
      get failsafeUntil() {
        return agent().failsafe.until;
      },
      get operation() {
        return agent().operation;
      },
      get restartingPrimary() {
        return agent().host.restarting !== null;
      },
      slotsMadeFor: null as number | null,
      keyOnLease: null as string | null,
      restarting: null as Promise<void> | null,
      leaderGoneAt: null as number | null,
      syncSetToRecord: () => this.spec.syncSetToRecord(),
      followSyncSet: (s: HaState, self: SelfObservation) => this.spec.followSyncSet(s, self),
      armBeforePrimary: (pid: number | null) => this.guard.armBeforePrimary(pid),
      promoted: (why: PromotionReason, ms: number | null) => {
        const { promotions } = this.state;
        this.state = {
          ...this.state,
          promotions: { ...promotions, [why]: promotions[why] + 1 },
          lastFailoverMs: ms,
        };
      },
      lookAgain: () => this.pace.nudge(),
      failed,
    };
    this.host = live;
    this.guard = new FenceGuard(live);
    // Its own functions over the same view: the prototype's getters stay live.
    this.spec = new SpecFollower(
      Object.assign(Object.create(live) as typeof live, {
        adopt: (c: ClusterContext, node: NodeSpec) => (this.d = { ...this.d, ctx: c, node }),
        retire: (why: string) => this.retire(why),
        oneAtATime: <T>(fn: () => Promise<T>) => this.oneAtATime(fn),
      }),
    );
    this.publisher = new MemberPublisher((record, lease) => this.store.publishMember(record, lease));
    this.execute = agentExecutors(this.host);
  }

  get current(): AgentState {
    return this.state;
  }

  /** The lease its leader key would live on now, while it is sure to live; null without one. */
  get heldLeaseId(): string | null {
    return this.lease?.id ?? null;
  }

  /** The context and node the agent acts on now (the spec may have been re-read since it began). */
  get context(): { readonly ctx: ClusterContext; readonly node: NodeSpec } {
    return { ctx: this.d.ctx, node: this.d.node };
  }

  /**
   * Arms the watchdog before this agent makes its server a primary (an operator's restart of the
   * leader's server): see FenceGuard.armBeforePrimary.
   */
  armBeforePrimary(pid: number | null): void {
    this.guard.armBeforePrimary(pid);
  }

  /**
   * Takes the spec file as it is now (renders this node anew when it changed) and returns once
   * done: an operator's restart right after editing the spec must come back with the new settings.
   */
  takeSpec(): Promise<void> {
    return this.spec.follow();
  }

  /** Ends the loop after this one: the agent then leaves as on SIGTERM. */
  retire(why: string): void {
    this.d.ctx.events.emit({ event: 'note', message: `agent of ${this.d.node.name}: ${why}` });
    this.retired.abort(why);
    this.nudge();
  }

  /**
   * Runs what an operator asked of this node (`what` names it in decisions and refusals), after the
   * loop's action in flight: meanwhile the loop goes on observing and fencing, and takes no action
   * of its own. One at a time: a second request is refused while the first runs.
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
      if (what === 'restart') this.guard.restartEnded();
      this.operation = null;
      this.nudge();
    }
  }

  /** A leader without etcd asks this node to promise not to promote (failsafe): why not, or null. */
  promiseFailsafe(leader: string): string | null {
    return this.failsafe.promise(leader);
  }

  /** Makes the loop run now rather than at its next tick. */
  nudge(): void {
    this.pace.nudge();
  }

  private oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.exclusive.then(fn);
    this.exclusive = run.catch(() => undefined);
    return run;
  }

  /** Loops until `stop` is aborted, then leaves (leave()). */
  async run(interrupted: AbortSignal): Promise<void> {
    const stop = AbortSignal.any([interrupted, this.retired.signal]);
    // The lease outlives the loop: leaving releases the key and revokes the lease under it.
    const renewals = new AbortController();
    await this.leases.start(renewals.signal);
    const watching = this.watch.run(stop);
    const onStop = () => this.pace.interrupt();
    stop.addEventListener('abort', onStop);
    try {
      while (!stop.aborted) {
        const began = this.d.ctx.clock.now();
        // A loop's etcd requests share one retryTimeout: with etcd hanging, the loop decides again
        // after that, not after a timeout per request (the lease is renewed apart, LeaseKeeper).
        const decision = await withEtcdBudget(this.d.ha.retryTimeoutMs, () => this.loopOnce());
        if (decision.kind === 'lead' && this.state.ha !== null) this.raftLeader.leading();
        else this.raftLeader.notLeading();
        await this.pace.sleepUntilNext(began, this.d.ha.loopWaitMs, stop, this.guard.watched());
      }
    } finally {
      stop.removeEventListener('abort', onStop);
      await this.leave();
      renewals.abort();
      await this.leases.stopped();
      await watching;
    }
  }

  /** One loop: etcd, own server, decision, action, fence, record. */
  private async loopOnce(): Promise<AgentDecision> {
    const { ctx, node, ha } = this.d;
    const h = this.host;
    const began = ctx.clock.now();
    this.log.loopBegins();
    await this.spec.follow();
    let haState: HaState | null = null;
    try {
      haState = await this.store.read();
      this.watch.check(haState);
      // A restarted agent finds the leader key it held under its previous lease: it takes that
      // lease over, rather than let it run out under a healthy primary.
      if (haState.view.leader?.node === node.name && haState.leaderLease)
        await this.leases.adopt(haState.leaderLease);
      h.keyOnLease = this.keyLease(haState);
    } catch (err) {
      this.log.failed('reading etcd', err);
    }
    const mark = this.guard.loopBegins();
    const self = await observeSelf(ctx, node, this.session);
    if (haState !== null && haState.view.initialize === null && !emptyHere(self))
      await this.store
        .markInitialized(node.name, ctx.clock.wallNow())
        .catch((err: unknown) => this.log.failed('recording that the cluster exists', err));
    const leader = haState?.view.leader ?? null;
    if (haState !== null && leader === null && this.lastRead?.view.leader && h.leaderGoneAt === null)
      h.leaderGoneAt = began;
    if (leader?.ready && leader.node !== node.name) h.leaderGoneAt = null;
    const holds = leader?.node === node.name;
    const down = self.local.kind === 'stopped' || self.local.kind === 'starting';
    this.downSince = holds && down ? (this.downSince ?? began) : null;
    const sw = haState?.view.switchover ?? null;
    if (haState !== null && sw?.at !== this.switchoverSeen?.at)
      this.switchoverSeen = sw ? { at: sw.at, since: began } : null;
    // Without etcd, or while etcd still holds its key on the lease it lost meanwhile, a leader keeps
    // writing only on its members' promises (failsafe).
    const ridingOut = h.keyOnLease !== null && h.keyOnLease !== this.lease?.id;
    if (haState !== null && !ridingOut) this.failsafe.reset();
    else if (ha.failsafe && self.local.kind === 'primary' && h.keyOnLease !== null) await this.failsafe.ask();
    const before = {
      me: node.name,
      now: ctx.clock.now(),
      switchoverSeenSince: this.switchoverSeen?.since ?? null,
      mode: ctx.spec.replication.mode,
      maximumLagOnFailover: ha.maximumLagOnFailover,
      failoverPriority: node.failoverPriority,
      noFailover: node.noFailover,
      specIndex: ctx.spec.nodes.indexOf(node),
      loopWaitMs: ha.loopWaitMs,
      local: self.local,
      dcs: haState?.view ?? null,
      leaseSafeUntil: this.lease?.safeUntil ?? 0,
      leaseId: this.lease?.id ?? null,
      // As far as etcd last said, the key is on this agent's lease (the one it had then: during an
      // outage the keeper gives the lease up once it could have run out).
      heldAtLastRead: h.keyOnLease !== null,
      failsafe: ha.failsafe,
      failsafeUntil: this.failsafe.until,
      promisedTo: this.failsafe.promisedTo,
      downSince: this.downSince,
      restartBudgetMs: restartBudgetMs(ha),
      operation: this.operation,
      slotsMadeFor: h.slotsMadeFor,
      startedAt: this.startedAt,
      bootstrapGraceMs: bootstrapGraceMs(ha),
      lastFailure: this.lastFailure,
    };
    const peers: Peer[] =
      haState !== null && needsPeers(before)
        ? await observePeers(ctx, node.name, haState.members, Math.min(1000, ha.retryTimeoutMs))
        : [];
    // Asking the peers takes up to a second: the time and the lease are read again after it.
    const lease = this.lease;
    const snapshot: AgentSnapshot = {
      ...before,
      peers,
      now: ctx.clock.now(),
      leaseSafeUntil: lease?.safeUntil ?? 0,
      leaseId: lease?.id ?? null,
    };
    const decision = decideAgent(snapshot);
    const traits = DECISIONS[decision.kind];
    this.log.decided(self, leader?.node ?? null, decision);
    try {
      const act = () =>
        (
          this.execute[decision.kind] as (
            d: AgentDecision,
            s: HaState | null,
            o: SelfObservation,
          ) => Promise<void>
        )(decision, haState, self);
      // An operation asked after this snapshot goes first; a fence never waits for one.
      if (decision.kind === 'fence') await act();
      else if (this.operation === null && decision.kind !== 'wait') await this.oneAtATime(act);
      // A rejoin remakes the standby whose start failed: that failure says nothing any more.
      const superseded = decision.kind === 'rejoin' && this.lastFailure?.kind === 'start-replica';
      if (this.lastFailure?.kind === decision.kind || superseded) this.lastFailure = null;
      // The server is not what this loop observed: the next loop, at once, observes and reports it.
      if (traits.changesServer) this.pace.nudge();
    } catch (err) {
      this.log.failed(decision.kind, err);
      this.lastFailure = { kind: decision.kind, at: ctx.clock.now() };
    }
    this.guard.after(self, decision, holds, mark);
    const record = memberRecord({
      node: node.name,
      api: this.d.api,
      self,
      decision,
      ha: haState,
      slotsMadeFor: h.slotsMadeFor,
      setback: promotionSetback({ lastFailure: this.lastFailure, now: ctx.clock.now() }),
    });
    if (this.lease)
      await this.publisher
        .publish(record, this.lease.id)
        .catch((err: unknown) => this.log.failed('publishing the member record', err));
    // What the API answers must include the key this loop took, gave up or announced.
    if (traits.changesKey && this.lease) haState = await this.store.read().catch(() => haState);
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
    this.d.onLoop?.(this.state);
    return decision;
  }

  /**
   * The lease the leader key is on, when it is this agent's: its live lease, or the one it lost
   * during an etcd outage it rode out in failsafe (etcd holds that key until its next expiry check
   * after it answers again; the members' promises, not the lease, then keep the primary writable).
   * Null otherwise: a key of an earlier run's lease is not this agent's to lead by.
   */
  private keyLease(s: HaState): string | null {
    const leader = s.view.leader;
    if (leader?.node !== this.d.node.name) return null;
    return leader.lease === this.lease?.id || leader.lease === this.leases.lastLostId ? leader.lease : null;
  }

  /** The lease while it is sure to live (the keeper renews it on a timer of its own). */
  private get lease(): HeldLease | null {
    return this.leases.current;
  }

  /** This agent's lease id, for a fenced write; '0' (which no key lives on) without one. */
  private get leaseId(): string {
    return this.lease?.id ?? '0';
  }

  /**
   * A clean stop (SIGTERM): a leader stops its server first and then gives up the key, so that a
   * replica takes over at once without a second primary; a replica's server is left running.
   */
  private async leave(): Promise<void> {
    const { ctx, node, fence } = this.d;
    this.guard.close();
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
      this.log.failed('leaving', err);
    } finally {
      if (controlOf(ctx, node).state().pid === null || this.state.self?.local.kind === 'replica')
        fence.close();
      this.session.close();
    }
  }
}

/** Its node holds no data: the one state in which its agent may take part in initializing the cluster. */
const emptyHere = (self: SelfObservation) => self.local.kind === 'stopped' && !self.local.initialized;

/**
 * How long an agent waits for the agent of a node earlier in the spec to initialize a new cluster:
 * hosts started together by a service manager come up seconds apart, and the spec's first node
 * should be the first primary, as with `pgrepl up`. At least the TTL.
 */
const bootstrapGraceMs = (ha: HaSpec) => Math.max(ha.ttlSeconds * 1000, 10_000);
