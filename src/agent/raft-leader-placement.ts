import type { Clock } from '../cluster/context/clock.js';
import { decideRaftLeaderMove } from '../cluster/decide/decide-raft-leader.js';
import type { EtcdClient } from '../dcs/etcd-client.js';

/** How often a leader looks where etcd's raft leader is: at once when it leads, then this often. */
export const RAFT_LEADER_CHECK_MS = 10_000;

/**
 * The leader's agent keeps etcd's raft leadership off its own host (decideRaftLeaderMove says why).
 * Outside the loop and its etcd budget, one look at a time; what fails is tried again at the next.
 */
export class RaftLeaderPlacement {
  private nextAt = 0;
  private looking: Promise<void> | null = null;

  constructor(
    private readonly d: {
      readonly etcd: Pick<EtcdClient, 'members' | 'moveLeader'>;
      readonly clock: Clock;
      /** The PostgreSQL leader's host: this node's, as the spec names it. */
      readonly host: () => string;
      readonly moved: (reason: string) => void;
      readonly failed: (err: unknown) => void;
    },
  ) {}

  /** After a loop in which this agent led with etcd answering. */
  leading(): void {
    const now = this.d.clock.now();
    if (this.looking !== null || now < this.nextAt) return;
    this.nextAt = now + RAFT_LEADER_CHECK_MS;
    this.looking = this.look()
      .catch((err: unknown) => this.d.failed(err))
      .finally(() => (this.looking = null));
  }

  /** No longer the leader: the next time it leads, it looks at once. */
  notLeading(): void {
    this.nextAt = 0;
  }

  private async look(): Promise<void> {
    const { members, leaderId } = await this.d.etcd.members();
    const d = decideRaftLeaderMove({ members, leaderId, host: this.d.host() });
    if (d.kind !== 'move') return;
    await this.d.etcd.moveLeader(d.leaderUrl, d.targetId);
    this.d.moved(d.reason);
  }
}
