import { controlOf } from '../cluster/actions/control-of.js';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { DECISIONS, decideFence } from '../cluster/decide/agent-decisions.js';
import type { AgentDecision } from '../cluster/decide/decide-agent.js';
import type { NodeSpec } from '../cluster-spec/cluster-spec.js';
import { watchProcess } from '../postgres/process-watch.js';
import type { ProcessWatch } from '../postgres/process-watch.js';
import type { FenceLink } from './fence-link.js';
import type { HeldLease } from './lease-keeper.js';
import type { SelfObservation } from './observe-self.js';

/** What the fence guard reads of its agent, as it is when asked. */
export interface FenceGuardHost {
  readonly ctx: ClusterContext;
  readonly node: NodeSpec;
  readonly fence: FenceLink;
  /** The lease the leader key is on, when it is this agent's (null: it holds no key). */
  readonly keyOnLease: string | null;
  readonly lease: HeldLease | null;
  /** Until when every other member's failsafe promise holds (0: none). */
  readonly failsafeUntil: number;
  /** It is starting its primary again in place (a crash under the key). */
  readonly restartingPrimary: boolean;
  /** What an operator asked and is under way. */
  readonly operation: string | null;
}

/**
 * The agent's side of the fence watchdog between loops: what it is told after each loop's action
 * (decideFence), its deadline moved by each renewal or failsafe promise, armed before a promotion,
 * and the postmaster that the sleep between loops watches.
 */
export class FenceGuard {
  /** The postmaster the guard last saw: the one the sleep after it watches. */
  private guardedPid: number | null = null;
  private postmasterWatch: ProcessWatch | null = null;
  /** Operators' restarts of this node that ended: one that ends during a loop restarted what it observed. */
  private restartsEnded = 0;

  constructor(private readonly h: FenceGuardHost) {}

  /** A mark taken before a loop observes its server, for after(). */
  loopBegins(): number {
    return this.restartsEnded;
  }

  restartEnded(): void {
    this.restartsEnded++;
  }

  /**
   * Tells the watchdog what decideFence says of the server after this loop's action. An operator's
   * restart that ran during the loop (since `mark`) may have left a postmaster the loop did not observe.
   */
  after(before: SelfObservation, decision: AgentDecision, holds: boolean, mark: number): void {
    const { ctx, node, fence } = this.h;
    fence.ensureRunning();
    const { pid, standbySignal } = controlOf(ctx, node).state();
    this.guardedPid = pid;
    const restarted = this.h.operation === 'restart' || this.restartsEnded !== mark;
    const order = decideFence({
      policy: DECISIONS[decision.kind].fence,
      pid,
      observedReplicaPid: before.local.kind === 'replica' ? before.pid : null,
      writableUntil: this.writableUntil(),
      now: ctx.clock.now(),
      restartingUnderKey: holds && (this.h.restartingPrimary || this.h.operation === 'restart'),
      restartingStandby: !holds && restarted && standbySignal,
    });
    if (order.kind === 'arm') fence.arm(order.until, order.pid);
    else fence.disarm();
  }

  /** Its lease was renewed, or its members promised: an armed deadline moves on while it holds the key. */
  extend(): void {
    if (this.h.keyOnLease !== null) this.h.fence.extend(this.writableUntil());
  }

  /**
   * Until when its server may take writes: while the leader key is known to be on its lease, until
   * that lease could run out, or, in failsafe, every member's promise; without the key, not at all
   * (a primary whose key lives on a lease it lost, say after a restart, is killed at once).
   */
  writableUntil(): number {
    const held = this.h.keyOnLease;
    if (held === null) return 0;
    const lease = this.h.lease;
    return Math.max(lease !== null && lease.id === held ? lease.safeUntil : 0, this.h.failsafeUntil);
  }

  /**
   * Arms the watchdog before this agent makes its server a primary, not after: an agent killed
   * between the two must not leave a primary that nothing fences. `pid` null: a server about to be
   * started, whose PID is not known yet (the watchdog then kills whichever owns the directory).
   */
  armBeforePrimary(pid: number | null): void {
    this.h.fence.ensureRunning();
    this.h.fence.arm(this.h.lease?.safeUntil ?? this.h.ctx.clock.now(), pid);
  }

  /** The watch on the postmaster the guard last saw, kept from loop to loop while it is the same one. */
  watched(): ProcessWatch | null {
    return this.watch(this.guardedPid);
  }

  /** Ends the watch on the postmaster (the agent leaves). */
  close(): void {
    this.watch(null);
  }

  private watch(pid: number | null): ProcessWatch | null {
    if (this.postmasterWatch?.pid !== pid) {
      this.postmasterWatch?.close();
      this.postmasterWatch = pid === null ? null : watchProcess(pid);
    }
    return this.postmasterWatch;
  }
}
