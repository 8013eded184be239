import { lsnDiff } from '../../postgres/lsn.js';
import type { AgentState } from '../agent-state.js';

/**
 * The series the page charts, by key. Each agent records those of its own node, so a line goes on
 * through a failover (the new primary's agent records the WAL rate from then on) and a replica's
 * lag is measured where it is true even when the primary cannot see it.
 */
export const SERIES = {
  /** A replica's WAL not yet replayed behind the leader's last recorded position (bytes). */
  lagBytes: (node: string) => `lag_bytes/${node}`,
  /** A replica's replay lag in seconds: the age of its last replayed transaction while behind. */
  lagSeconds: (node: string) => `lag_seconds/${node}`,
  /** The primary's WAL written per second (bytes). */
  walRate: 'wal_rate',
  /** The primary's commits per second. */
  commitRate: 'commit_rate',
  /** The WAL a replication slot keeps on the primary (bytes). */
  slotRetained: (slot: string) => `slot_retained/${slot}`,
} as const;

/** What a rate is counted from: the primary's WAL position and commits at one moment. */
export interface RateBase {
  /** The agent's monotonic clock (ms). */
  readonly at: number;
  readonly timeline: number;
  readonly lsn: string;
  readonly commits: number | null;
}

export interface Samples {
  readonly values: readonly (readonly [key: string, value: number | null])[];
  /** What the next rates are counted from; null when this node is no primary. */
  readonly base: RateBase | null;
}

/** Per second from `from` to `to` over `ms`; null when it went back (a new timeline, a stats reset). */
const perSecond = (delta: number | null, ms: number) =>
  delta === null || delta < 0 || ms <= 0 ? null : (delta * 1000) / ms;

/** The samples of this loop's state: pure, so that what the charts show is tested without a server. */
export function dashboardSamples(prev: RateBase | null, s: AgentState, now: number): Samples {
  const local = s.self?.local;
  if (local?.kind === 'replica')
    return {
      values: [
        [SERIES.lagBytes(s.node), s.record?.replayLagBytes ?? null],
        [SERIES.lagSeconds(s.node), s.self?.instance?.replayLagSeconds ?? null],
      ],
      base: null,
    };
  if (local?.kind !== 'primary' || local.lsn === null || local.timeline === null)
    return { values: [], base: null };
  const base: RateBase = {
    at: now,
    timeline: local.timeline,
    lsn: local.lsn,
    commits: s.self?.instance?.commits ?? null,
  };
  const same = prev !== null && prev.timeline === base.timeline;
  const ms = same ? now - prev.at : 0;
  const commits = same && prev.commits !== null && base.commits !== null ? base.commits - prev.commits : null;
  return {
    values: [
      [SERIES.walRate, same ? perSecond(lsnDiff(base.lsn, prev.lsn), ms) : null],
      [SERIES.commitRate, perSecond(commits, ms)],
      ...(s.self?.slots ?? []).map((x) => [SERIES.slotRetained(x.name), x.retainedBytes] as const),
    ],
    base,
  };
}

/** One sample per second at most: the agent loops 4 times a second on the fast profile. */
export const SAMPLE_EVERY_MS = 1000;

/** What `viewSamples` reads of a node in `status`'s table. */
export interface StatusNodeSample {
  readonly name: string;
  readonly role: string;
  readonly timeline: number | null;
  readonly lsn: string | null;
  readonly lagBytes: number | null;
  readonly replayLagMs: number | null;
  readonly slot: { readonly name: string; readonly retainedBytes: number | null } | null;
}

/**
 * The same series from `status`'s observation, for `pgrepl dashboard` on a cluster without agents:
 * each replica's lag as its primary sees it (pg_stat_replication), the primary's WAL rate and its
 * slots. Commits are not in that observation: their chart stays empty there.
 */
export function viewSamples(prev: RateBase | null, nodes: readonly StatusNodeSample[], now: number): Samples {
  const values: [string, number | null][] = [];
  for (const n of nodes)
    if (n.role === 'replica') {
      values.push([SERIES.lagBytes(n.name), n.lagBytes]);
      values.push([SERIES.lagSeconds(n.name), n.replayLagMs === null ? null : n.replayLagMs / 1000]);
    }
  for (const n of nodes) if (n.slot) values.push([SERIES.slotRetained(n.slot.name), n.slot.retainedBytes]);
  const primary = nodes.find((n) => n.role === 'primary' && n.lsn !== null && n.timeline !== null);
  if (!primary) return { values, base: null };
  const base: RateBase = {
    at: now,
    timeline: primary.timeline as number,
    lsn: primary.lsn as string,
    commits: null,
  };
  const same = prev !== null && prev.timeline === base.timeline;
  values.push([SERIES.walRate, same ? perSecond(lsnDiff(base.lsn, prev.lsn), now - prev.at) : null]);
  return { values, base };
}
