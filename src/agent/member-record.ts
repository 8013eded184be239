import { lsnDiff } from '../postgres/lsn.js';
import type { AgentDecision } from '../cluster/decide/decide-agent.js';
import type { HaState, MemberRecord } from '../dcs/ha-values.js';
import type { SelfObservation } from './observe-self.js';

/** A replica ahead of the leader's last record (recorded a loop ago) is not behind at all. */
const nonNegative = (d: number | null) => (d === null ? null : Math.max(0, d));

/** What an agent says of its node this loop: published in etcd, and read by its own checks. */
export function memberRecord(o: {
  readonly node: string;
  readonly api: string;
  readonly self: SelfObservation;
  readonly decision: AgentDecision;
  readonly ha: HaState | null;
  readonly slotsMadeFor: number | null;
  /** Why it is no failover candidate for now, besides its server's own problem (promotionSetback). */
  readonly setback: string | null;
}): MemberRecord {
  const last = o.ha?.view.lastLeaderLsn?.lsn ?? null;
  const local = o.self.local;
  const lsn = local.kind === 'primary' ? local.lsn : local.kind === 'replica' ? local.positionLsn : null;
  return {
    node: o.node,
    role: local.kind,
    timeline: local.kind === 'primary' || local.kind === 'replica' ? local.timeline : null,
    lsn,
    replayLsn: local.kind === 'replica' ? local.replayLsn : null,
    lagBytes: local.kind === 'replica' ? nonNegative(lsnDiff(last, lsn)) : null,
    problem: local.kind === 'replica' ? (local.problem ?? o.setback) : null,
    upstream: local.kind === 'replica' ? local.upstream : null,
    streaming: local.kind === 'replica' && local.streaming,
    slotsFor: o.slotsMadeFor,
    syncStandbys: o.self.syncStandbys,
    quorumStandbys: o.self.quorumStandbys,
    replayLagBytes: local.kind === 'replica' ? nonNegative(lsnDiff(last, local.replayLsn)) : null,
    decision: o.decision.kind,
    reason: o.decision.reason,
    api: o.api,
    pid: process.pid,
    at: Date.now(),
  };
}

/** An unchanged member record is written again after this long. */
const PUBLISH_AT_LEAST_MS = 10_000;

/**
 * Writes an agent's member record on its lease, and only when it says something new, every
 * PUBLISH_AT_LEAST_MS so that its time stays recent, or under a new lease.
 */
export class MemberPublisher {
  private published: { text: string; lease: string; at: number } | null = null;

  constructor(private readonly write: (record: MemberRecord, lease: string) => Promise<void>) {}

  async publish(record: MemberRecord, lease: string): Promise<void> {
    const text = JSON.stringify({ ...record, at: 0 });
    const before = this.published;
    if (before?.text === text && before.lease === lease && record.at - before.at < PUBLISH_AT_LEAST_MS)
      return;
    await this.write(record, lease);
    this.published = { text, lease, at: record.at };
  }
}
