import { PgreplError } from '../errors.js';
import { watchProcess } from '../postgres/process-watch.js';
import type { ProcessWatch } from '../postgres/process-watch.js';
import { keptSession } from '../postgres/sql-client.js';
import type { KeptSession } from '../postgres/sql-client.js';
import type { NodeSpec } from '../cluster-spec/cluster-spec.js';
import { adminTarget, requireSuperuserPassword } from '../cluster/context/cluster-context.js';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { controlOf } from '../cluster/actions/control-of.js';
import { decideFence, DECISIONS } from '../cluster/decide/agent-decisions.js';
import { decideAgent, needsPeers } from '../cluster/decide/decide-agent.js';
import type { AgentDecision, AgentSnapshot, Peer } from '../cluster/decide/decide-agent.js';
import { haStore } from '../dcs/ha-store.js';
import type { HaStore } from '../dcs/ha-store.js';
import type { HaState } from '../dcs/ha-values.js';
import { agentExecutors } from './agent-executors.js';
import type { ExecutorHost } from './agent-executors.js';
import { initialAgentState, leaseMarginMs, restartBudgetMs } from './agent-state.js';
import type { AgentDeps, AgentState } from './agent-state.js';
import { EtcdWatch } from './etcd-watch.js';
import { Failsafe } from './failsafe.js';
import { LeaseKeeper } from './lease-keeper.js';
import type { HeldLease } from './lease-keeper.js';
import { memberRecord, MemberPublisher } from './member-record.js';
import { observePeers, observeSelf } from './observe-self.js';
import type { SelfObservation } from './observe-self.js';
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
  private lastLogged = '';
  private wake: (() => void) | null = null;
  private woke = false;
  private state: AgentState;
  /** What an operator asked and is under way (operate); the loop then only observes and fences. */
  private operation: string | null = null;
  /** The loop's actions and the operators' operations, one at a time. */
  private exclusive: Promise<unknown> = Promise.resolve();
  /** Aborted when the agent must end by itself: its node was removed. */
  private readonly retired = new AbortController();
  /** The postmaster the fence guard last saw: the one the sleep after it watches. */
  private guardedPid: number | null = null;
  /** Operators' restarts of this node that ended: one that ends during a loop restarted what it observed. */
  private restartsEnded = 0;
  private postmasterWatch: ProcessWatch | null = null;
  private failingBefore = new Set<string>();
  private failingNow = new Set<string>();

  constructor(private d: AgentDeps) {
    const { ctx, ha } = d;
    this.store = haStore(d.etcd, ctx.spec.cluster);
    const target = adminTarget(ctx, d.node);
    if (!target) requireSuperuserPassword(ctx);
    // A lost session most often means a dead postmaster: the loop looks at once.
    this.session = keptSession(target!, Math.min(1000, ha.retryTimeoutMs), () => this.nudge());
    this.state = initialAgentState(d.node.name);
    // The hosts' getters read the agent as it is when asked (its spec may be re-read meanwhile).
    const now = {
      d: () => this.d,
      leaseId: () => this.leaseId,
      lastRead: () => this.lastRead,
      localKind: () => this.state.self?.local.kind,
    };
    const failed = (during: string, err: unknown) => this.failed(during, err);
    const recovered = (during: string) => this.failingBefore.delete(during);
    this.leases = new LeaseKeeper({
      calls: this.store,
      clock: ctx.clock,
      ttlSeconds: ha.ttlSeconds,
      loopWaitMs: ha.loopWaitMs,
      retryTimeoutMs: ha.retryTimeoutMs,
      marginMs: leaseMarginMs(ha),
      onChange: (lease) => {
        // While the key lives on this lease, its watchdog deadline moves with each renewal.
        if (lease !== null && lease.id === this.host.keyOnLease) this.d.fence.extend(lease.safeUntil);
        // A lost lease, or a first one: the loop looks at once.
        if (lease === null || this.state.leaseSafeUntil === 0) this.nudge();
      },
      onError: (err) => {
        failed('renewing the lease', err);
        void this.failsafe.renewalFailed();
      },
    });
    this.failsafe = new Failsafe({
      me: d.node.name,
      ha,
      clock: ctx.clock,
      askPeers: d.askFailsafe,
      localKind: () => this.state.self?.local.kind,
      lastRead: () => this.lastRead,
      holdsKey: () => this.host.keyOnLease !== null,
      promised: () => {
        if (this.host.keyOnLease !== null) this.d.fence.extend(this.writableUntil());
      },
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
    this.spec = new SpecFollower({
      get ctx() {
        return now.d().ctx;
      },
      get node() {
        return now.d().node;
      },
      get reload() {
        return now.d().reload;
      },
      store: this.store,
      session: this.session,
      get leaseId() {
        return now.leaseId();
      },
      get localKind() {
        return now.localKind();
      },
      get lastRead() {
        return now.lastRead();
      },
      adopt: (c, node) => (this.d = { ...this.d, ctx: c, node }),
      retire: (why) => this.retire(why),
      oneAtATime: (fn) => this.oneAtATime(fn),
      failed,
    });
    this.publisher = new MemberPublisher((record, lease) => this.store.publishMember(record, lease));
    this.host = {
      get ctx() {
        return now.d().ctx;
      },
      get node() {
        return now.d().node;
      },
      ha,
      store: this.store,
      session: this.session,
      get leaseId() {
        return now.leaseId();
      },
      slotsMadeFor: null,
      keyOnLease: null,
      restarting: null,
      leaderGoneAt: null,
      syncSetToRecord: () => this.spec.syncSetToRecord(),
      followSyncSet: (s, self) => this.spec.followSyncSet(s, self),
      armBeforePrimary: (pid) => this.armBeforePrimary(pid),
      promoted: (why, ms) => {
        const { promotions } = this.state;
        this.state = {
          ...this.state,
          promotions: { ...promotions, [why]: promotions[why] + 1 },
          lastFailoverMs: ms,
        };
      },
      lookAgain: () => (this.woke = true),
      failed,
    };
    this.execute = agentExecutors(this.host);
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
      if (what === 'restart') this.restartsEnded++;
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
    this.woke = true;
    this.wake?.();
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

  /** One loop: etcd, own server, decision, action, fence, record. */
  async loopOnce(): Promise<AgentDecision> {
    const { ctx, node, ha } = this.d;
    const h = this.host;
    const began = ctx.clock.now();
    // What failed in the last loop and not since is told again if it fails again.
    this.failingBefore = new Set(
      [...this.failingBefore].filter((f) => this.failingNow.has(f) || f === 'watching etcd'),
    );
    this.failingNow = new Set();
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
      this.failed('reading etcd', err);
    }
    const restartsBefore = this.restartsEnded;
    const self = await observeSelf(ctx, node, this.session);
    const leader = haState?.view.leader ?? null;
    if (haState !== null && leader === null && this.lastRead?.view.leader && h.leaderGoneAt === null)
      h.leaderGoneAt = began;
    if (leader?.ready && leader.node !== node.name) h.leaderGoneAt = null;
    const holds = leader?.node === node.name;
    const down = self.local.kind === 'stopped' || self.local.kind === 'starting';
    this.downSince = holds && down ? (this.downSince ?? began) : null;
    // Without etcd, or while etcd still holds its key on the lease it lost meanwhile, a leader keeps
    // writing only on its members' promises (failsafe).
    const ridingOut = h.keyOnLease !== null && h.keyOnLease !== this.lease?.id;
    if (haState !== null && !ridingOut) this.failsafe.reset();
    else if (ha.failsafe && self.local.kind === 'primary' && h.keyOnLease !== null) await this.failsafe.ask();
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
      wallNow: ctx.clock.wallNow(),
      leaseSafeUntil: lease?.safeUntil ?? 0,
      leaseId: lease?.id ?? null,
    };
    const decision = decideAgent(snapshot);
    const traits = DECISIONS[decision.kind];
    this.logChange(self, leader?.node ?? null, decision);
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
      // The server is not what this loop observed: the next loop, at once, observes and reports it.
      if (traits.changesServer) this.woke = true;
    } catch (err) {
      this.failed(decision.kind, err);
    }
    this.guard(self, decision, holds, this.operation === 'restart' || this.restartsEnded !== restartsBefore);
    const record = memberRecord({
      node: node.name,
      api: this.d.api,
      self,
      decision,
      ha: haState,
      slotsMadeFor: h.slotsMadeFor,
    });
    if (this.lease)
      await this.publisher
        .publish(record, this.lease.id)
        .catch((err: unknown) => this.failed('publishing the member record', err));
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
   * Tells the fence watchdog what decideFence says of the server after this loop's action.
   * `restarted`: an operator's restart of this node ran during the loop, so the postmaster running
   * now may be one the loop did not observe.
   */
  private guard(before: SelfObservation, decision: AgentDecision, holds: boolean, restarted: boolean): void {
    const { ctx, node, fence } = this.d;
    fence.ensureRunning();
    const { pid, standbySignal } = controlOf(ctx, node).state();
    this.guardedPid = pid;
    const order = decideFence({
      policy: DECISIONS[decision.kind].fence,
      pid,
      observedReplicaPid: before.local.kind === 'replica' ? before.pid : null,
      writableUntil: this.writableUntil(),
      now: ctx.clock.now(),
      restartingUnderKey: holds && (this.host.restarting !== null || this.operation === 'restart'),
      restartingStandby: !holds && restarted && standbySignal,
    });
    if (order.kind === 'arm') fence.arm(order.until, order.pid);
    else fence.disarm();
  }

  /**
   * Until when its server may take writes: while the leader key is known to be on its lease, until
   * that lease could run out, or, in failsafe, every member's promise; without the key, not at all
   * (a primary whose key lives on a lease it lost, say after a restart, is killed at once).
   */
  private writableUntil(): number {
    const held = this.host.keyOnLease;
    if (held === null) return 0;
    const lease = this.lease;
    return Math.max(lease !== null && lease.id === held ? lease.safeUntil : 0, this.failsafe.until);
  }

  /**
   * Arms the watchdog before this agent makes its server a primary, not after: an agent killed
   * between the two must not leave a primary that nothing fences. `pid` null: a server about to be
   * started, whose PID is not known yet (the watchdog then kills whichever owns the directory).
   */
  armBeforePrimary(pid: number | null): void {
    this.d.fence.ensureRunning();
    this.d.fence.arm(this.lease?.safeUntil ?? this.d.ctx.clock.now(), pid);
  }

  /** The watch on the postmaster the loop saw, kept from loop to loop while it is the same one. */
  private watchPostmaster(pid: number | null): ProcessWatch | null {
    if (this.postmasterWatch?.pid !== pid) {
      this.postmasterWatch?.close();
      this.postmasterWatch = pid === null ? null : watchProcess(pid);
    }
    return this.postmasterWatch;
  }

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
   * the same failure is told again only after a loop without it. Every etcd error is counted.
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
}

/**
 * How often a sleeping loop asks whether its postmaster still runs. Polling every 0.1 s was a tenth
 * of an idle agent's CPU; the kept session's end tells of a death sooner.
 */
const POSTMASTER_POLL_MS = 500;
