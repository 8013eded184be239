import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Counter, Gauge, Registry } from 'prom-client';
import { parseLsn } from '../postgres/lsn.js';
import type { Clock } from '../cluster/context/clock.js';
import type { AgentState } from './agent-loop.js';
import { leadsAsPrimary } from './agent-state.js';
import type { LogicalStatus } from '../cluster/operations/read-logical-status.js';
import type { LogicalSlotState } from '../postgres/logical-queries.js';

/**
 * The agent's Prometheus metrics (`pgrepl_` prefix), read from its last loop at each scrape. Names
 * follow what users of Patroni and CloudNativePG already chart: role, timeline, WAL positions,
 * lag, leader, failovers and their duration.
 */
export function agentMetrics(
  state: () => AgentState,
  clock: Clock,
  certFile?: string,
  lastBackup?: () => { readonly endedAt: number; readonly type: string } | null,
  logical?: () => Promise<LogicalStatus | null>,
): Registry {
  const registry = new Registry();
  const gauge = (
    name: string,
    help: string,
    read: (s: AgentState, g: Gauge) => void | Promise<void>,
    labelNames: string[] = [],
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        await read(state(), this);
      },
    });
  const setIf = (g: Gauge, v: number | null | undefined) => {
    if (v !== null && v !== undefined) g.set(v);
  };
  const lsnBytes = (l: string | null | undefined) => (l ? Number(parseLsn(l)) : null);
  gauge('pgrepl_primary', '1 when this node runs as primary holding the leader key', (s, g) =>
    g.set(leadsAsPrimary(s) ? 1 : 0),
  );
  gauge('pgrepl_replica', '1 when this node runs as a replica', (s, g) =>
    g.set(s.self?.local.kind === 'replica' ? 1 : 0),
  );
  gauge('pgrepl_postgres_running', '1 when a postmaster runs for this node', (s, g) =>
    g.set(s.self?.pid ? 1 : 0),
  );
  gauge('pgrepl_postgres_timeline', 'the timeline this node is on', (s, g) => {
    const l = s.self?.local;
    setIf(g, l && (l.kind === 'primary' || l.kind === 'replica') ? l.timeline : null);
  });
  gauge('pgrepl_wal_lsn_bytes', "WAL position: a primary's current, a replica's furthest held", (s, g) => {
    const l = s.self?.local;
    setIf(g, lsnBytes(l?.kind === 'primary' ? l.lsn : l?.kind === 'replica' ? l.positionLsn : null));
  });
  gauge('pgrepl_replay_lsn_bytes', "a replica's replayed WAL position", (s, g) => {
    const l = s.self?.local;
    setIf(g, lsnBytes(l?.kind === 'replica' ? l.replayLsn : null));
  });
  gauge('pgrepl_replication_lag_bytes', "bytes behind the leader's last recorded position", (s, g) =>
    setIf(g, s.record?.lagBytes),
  );
  gauge(
    'pgrepl_replication_lag_seconds',
    "a replica's replay lag: 0 when it replayed all it received, else the age of its last replayed transaction",
    (s, g) => setIf(g, s.self?.instance?.replayLagSeconds),
  );
  gauge(
    'pgrepl_standby_replay_lag_seconds',
    "on the primary, each standby's replay lag as pg_stat_replication measures it",
    (s, g) => {
      for (const x of s.self?.senders ?? [])
        if (x.replayLagMs !== null) g.set({ standby: x.applicationName }, x.replayLagMs / 1000);
    },
    ['standby'],
  );
  gauge(
    'pgrepl_slot_retained_bytes',
    'on the primary, the WAL each replication slot keeps (its restart_lsn behind the current position)',
    (s, g) => {
      for (const x of s.self?.slots ?? [])
        if (x.retainedBytes !== null) g.set({ slot: x.name, active: String(x.active) }, x.retainedBytes);
    },
    ['slot', 'active'],
  );
  gauge('pgrepl_cluster_unlocked', '1 when no node holds the leader key', (s, g) =>
    setIf(g, s.ha ? (s.ha.view.leader ? 0 : 1) : null),
  );
  gauge(
    'pgrepl_leader',
    '1 for the node that holds the leader key',
    (s, g) => {
      const leader = s.ha?.view.leader?.node;
      if (leader) g.set({ node: leader }, 1);
    },
    ['node'],
  );
  gauge('pgrepl_paused', '1 in maintenance mode (agents change nothing)', (s, g) =>
    setIf(g, s.ha ? (s.ha.view.paused ? 1 : 0) : null),
  );
  gauge('pgrepl_lease_seconds_left', "how long this agent's lease is sure to live", (s, g) =>
    g.set(Math.max(0, (s.leaseSafeUntil - clock.now()) / 1000)),
  );
  gauge('pgrepl_loop_duration_seconds', 'how long the last loop took', (s, g) => g.set(s.lastLoopMs / 1000));
  gauge(
    'pgrepl_last_failover_seconds',
    "from the leader key's loss to this node taking writes, at its last promotion",
    (s, g) => setIf(g, s.lastFailoverMs === null ? null : s.lastFailoverMs / 1000),
  );
  new Counter({
    name: 'pgrepl_failovers_total',
    help: "promotions of this agent with no leader to hand over: the key lost (leader_lost) or an operator's `promote` (operator)",
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      const { promotions } = state();
      for (const reason of ['leader_lost', 'operator'] as const) this.inc({ reason }, promotions[reason]);
    },
  });
  new Counter({
    name: 'pgrepl_switchovers_total',
    help: 'promotions of this agent that a leader handed over to it (a switchover)',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ reason: 'operator' }, state().promotions.switchover);
    },
  });
  new Counter({
    name: 'pgrepl_xact_commit_total',
    help: 'on the primary, transactions committed in all its databases since its statistics were reset (pg_stat_database); rate() gives commits per second',
    registers: [registry],
    collect() {
      this.reset();
      const commits = state().self?.instance?.commits;
      if (commits !== null && commits !== undefined) this.inc(commits);
    },
  });
  new Counter({
    name: 'pgrepl_archive_failures_total',
    help: 'on a primary with backup:, WAL segments its archive_command failed to archive since its statistics were reset (pg_stat_archiver)',
    registers: [registry],
    collect() {
      this.reset();
      const failed = state().self?.instance?.archiver?.failedCount;
      if (failed !== undefined) this.inc(failed);
    },
  });
  gauge(
    'pgrepl_archive_pending_segments',
    "on a primary with backup:, finished WAL segments not yet in the repository: the archive's lag",
    (s, g) => setIf(g, s.self?.instance?.archiver?.pendingSegments),
  );
  gauge(
    'pgrepl_archive_failing',
    "on a primary with backup:, 1 when the archiver's last attempt failed",
    (s, g) => {
      const a = s.self?.instance?.archiver;
      if (a) g.set(a.failing ? 1 : 0);
    },
  );
  gauge(
    'pgrepl_archive_last_success_age_seconds',
    'on a primary with backup:, seconds since the last WAL segment was archived',
    (s, g) => setIf(g, s.self?.instance?.archiver?.lastArchivedAgeSeconds),
  );
  if (lastBackup)
    gauge(
      'pgrepl_last_backup_age_seconds',
      "on the leader with backup.schedule, seconds since its last scheduled backup that succeeded ended, labelled with that backup's type; no sample before the first, nor on the other agents",
      (_s, g) => {
        const last = lastBackup();
        if (last) g.set({ type: last.type }, (clock.wallNow() - last.endedAt) / 1000);
      },
      ['type'],
    );
  if (logical) logicalMetrics(gauge, logical);
  new Counter({
    name: 'pgrepl_etcd_errors_total',
    help: 'etcd requests of this agent that failed (lease, reads, writes, watch)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(state().etcdErrors);
    },
  });
  // Certificates end on the wall clock of every host that checks them, not on the agent's own.
  if (certFile)
    gauge(
      'pgrepl_certificate_expiry_seconds',
      "seconds until this node's certificate (its server's and its agent's) expires; negative once it has",
      (_s, g) => setIf(g, certSecondsLeft(certFile)),
    );
  return registry;
}

function certSecondsLeft(file: string): number | null {
  try {
    return (Date.parse(new X509Certificate(readFileSync(file)).validTo) - Date.now()) / 1000;
  } catch {
    return null;
  }
}

/**
 * Logical replication on this node while it is the primary: its publications' slots and its
 * subscriptions, read once per scrape (every gauge of one scrape shares the read).
 */
function logicalMetrics(
  gauge: (
    name: string,
    help: string,
    read: (s: AgentState, g: Gauge) => Promise<void>,
    labelNames: string[],
  ) => Gauge,
  read: () => Promise<LogicalStatus | null>,
): void {
  let pending: { at: number; status: Promise<LogicalStatus | null> } | null = null;
  const once = () => {
    const now = Date.now();
    if (!pending || now - pending.at > 1000) pending = { at: now, status: read().catch(() => null) };
    return pending.status;
  };
  const logicalGauge = (
    name: string,
    help: string,
    labelNames: string[],
    fill: (l: LogicalStatus, g: Gauge) => void,
  ) =>
    gauge(
      name,
      help,
      async (_s, g) => {
        const l = await once();
        if (l) fill(l, g);
      },
      labelNames,
    );
  const perSlot: [string, string, (x: LogicalSlotState) => number][] = [
    [
      'pgrepl_logical_slot_lag_bytes',
      "on the primary, WAL a logical slot's subscriber has not confirmed yet",
      (x) => x.lagBytes,
    ],
    [
      'pgrepl_logical_slot_retained_bytes',
      'on the primary, WAL kept for a logical slot',
      (x) => x.retainedBytes,
    ],
    [
      'pgrepl_logical_slot_active',
      'on the primary, 1 while a subscriber streams from the slot',
      (x) => (x.active ? 1 : 0),
    ],
  ];
  for (const [name, help, value] of perSlot)
    logicalGauge(name, help, ['slot', 'database'], (l, g) => {
      for (const x of l.slots) g.set({ slot: x.name, database: x.database }, value(x));
    });
  logicalGauge(
    'pgrepl_subscription_up',
    "on the primary, 1 while the subscription's apply worker streams",
    ['subscription', 'database'],
    (l, g) => {
      for (const x of l.subscriptions)
        g.set({ subscription: x.name, database: x.database }, x.state === 'streaming' ? 1 : 0);
    },
  );
  logicalGauge(
    'pgrepl_subscription_tables',
    "on the primary, the subscription's tables by copy state (r: ready)",
    ['subscription', 'state'],
    (l, g) => {
      for (const x of l.subscriptions)
        for (const [state, n] of Object.entries(x.tables)) g.set({ subscription: x.name, state }, n);
    },
  );
  logicalGauge(
    'pgrepl_subscription_lag_bytes',
    "on the primary, WAL of the publisher's slot the subscription has not confirmed",
    ['subscription'],
    (l, g) => {
      for (const x of l.subscriptions) if (x.lagBytes !== null) g.set({ subscription: x.name }, x.lagBytes);
    },
  );
  logicalGauge(
    'pgrepl_subscription_last_message_age_seconds',
    'on the primary, seconds since the publisher last sent the subscription anything',
    ['subscription'],
    (l, g) => {
      for (const x of l.subscriptions)
        if (x.lastMessageAgeSeconds !== null) g.set({ subscription: x.name }, x.lastMessageAgeSeconds);
    },
  );
}
