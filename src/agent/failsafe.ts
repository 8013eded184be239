import type { Clock } from '../cluster/context/clock.js';
import type { HaSpec } from '../cluster-spec/cluster-spec.js';
import type { HaState } from '../dcs/ha-values.js';
import { leaseMarginMs } from './agent-state.js';

/** What failsafe needs of its agent. */
export interface FailsafeHost {
  readonly me: string;
  readonly ha: HaSpec;
  readonly clock: Clock;
  /** Asks every other member's agent for a promise; absent: no round can be made. */
  readonly askPeers: (() => Promise<readonly { node: string; ok: boolean; why: string }[]>) | undefined;
  /** Its server at its last loop. */
  readonly localKind: () => string | undefined;
  /** What etcd said last. */
  readonly lastRead: () => HaState | null;
  /** Whether, as far as etcd last said, the leader key is on this agent's lease. */
  readonly holdsKey: () => boolean;
  /** Every other member promised, until `until` (monotonic): the watchdog may wait that long. */
  promised(until: number): void;
  failed(during: string, err: unknown): void;
  recovered(during: string): void;
}

/**
 * Patroni's failsafe, both sides. A leader that cannot reach etcd asks every other member, over its
 * agent's API, to confirm it sees no other leader and will not promote; only when all of them do may
 * its primary stay writable past its lease, until their promises could run out: a TTL from when it
 * asked, less the lease margin. A round that fails leaves the last promises to run out. A member
 * asked promises for a TTL from when it was asked.
 */
export class Failsafe {
  /** A leader: until when (monotonic) every other member's promise holds; 0 without one. */
  until = 0;
  /** A member: the leader it promised not to promote against, and until when. */
  promisedTo: { readonly leader: string; readonly until: number } | null = null;

  /** The round under way, which a second caller joins rather than start another. */
  private asking: Promise<void> | null = null;

  constructor(private readonly h: FailsafeHost) {}

  /**
   * The lease keeper could not renew. A leader asks at once, not at its next loop: that loop's own
   * etcd calls (the member record, the read) may each hang for retryTimeout first, which can take
   * it past the lease it last renewed (loopWait + retryTimeout after it, the keeper reports; the
   * lease lives ttl − margin). Seen in CI: a primary killed by its watchdog at 2.5 s of an outage.
   */
  async renewalFailed(): Promise<void> {
    const { h } = this;
    if (h.ha.failsafe && h.localKind() === 'primary' && h.holdsKey()) await this.ask();
  }

  /** One round of asking, for a leader that cannot reach etcd. */
  ask(): Promise<void> {
    this.asking ??= this.round().finally(() => (this.asking = null));
    return this.asking;
  }

  private async round(): Promise<void> {
    const { h } = this;
    if (!h.askPeers) return;
    const sentAt = h.clock.now();
    const answers = await h.askPeers();
    const refused = answers.filter((a) => !a.ok);
    if (refused.length > 0) {
      h.failed('failsafe', new Error(refused.map((a) => `${a.node}: ${a.why}`).join('; ')));
      return;
    }
    this.until = Math.max(this.until, sentAt + h.ha.ttlSeconds * 1000 - leaseMarginMs(h.ha));
    h.recovered('failsafe');
    h.promised(this.until);
  }

  /** etcd answers again: promises asked are no longer needed. */
  reset(): void {
    this.until = 0;
  }

  /**
   * A member asked by `leader` to promise not to promote: it does, for a TTL, unless it runs as a
   * primary itself or the last it read of etcd is another node holding the leader key. Returns why
   * it refused, or null.
   */
  promise(leader: string): string | null {
    const { h } = this;
    if (leader === h.me) return `${h.me} is the node asking`;
    if (h.localKind() === 'primary') return `${h.me} runs as a primary itself`;
    const seen = h.lastRead()?.view.leader;
    if (seen && seen.node !== leader) return `${h.me} sees ${seen.node} holding the leader key`;
    this.promisedTo = { leader, until: h.clock.now() + h.ha.ttlSeconds * 1000 };
    return null;
  }
}
