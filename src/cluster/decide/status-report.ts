import type { ClusterSpec } from '../../cluster-spec/cluster-spec.js';
import type { ArchiverFacts } from '../../postgres/instance-queries.js';
import type { JournalEntry } from '../store/cluster-store.js';
import { topologyGuard } from './topology-guard.js';
import { roleOf } from '../observe/observation.js';
import { replicaPosition } from './replica-position.js';
import type { ClusterObservation, NodeObservation, ObservedRole } from '../observe/observation.js';

/** One node in `status --json`; documented in README.md, keep in step with it. */
export interface NodeStatus {
  name: string;
  host: string;
  port: number;
  dataDir: string;
  /** The node's host is this machine, so its data directory was read too (not only its answers). */
  local: boolean;
  role: ObservedRole;
  timeline: number | null;
  /** Current write LSN on a primary; last replayed LSN on a replica. */
  lsn: string | null;
  /** How far a replica's WAL goes: the furthest of what it received and what it replayed (replicaPosition). */
  receiveLsn: string | null;
  replayLsn: string | null;
  /** host:port this node streams from. */
  upstream: string | null;
  /** streaming, catchup, startup, ... for replicas (as the primary sees them); `primary`, `down`, ... otherwise. */
  state: string;
  lagBytes: number | null;
  writeLagMs: number | null;
  flushLagMs: number | null;
  replayLagMs: number | null;
  syncState: string | null;
  slot: { name: string; active: boolean; retainedBytes: number | null } | null;
  /** Settings of its postgresql.conf that take effect only at its next restart. */
  pendingRestart: string[];
  /** A primary's WAL archiver (with `backup:`); null elsewhere. */
  archiver: ArchiverFacts | null;
  /**
   * The TLS version of its connections (pg_stat_ssl), `none` for one that is not encrypted, null for
   * no such connection: `replication`, a replica's stream as its primary sees it; `pgrepl`, pgrepl's
   * own connection to it.
   */
  tls: { replication: string | null; pgrepl: string | null };
  error: string | null;
}

export interface ClusterStatus {
  cluster: string;
  healthy: boolean;
  primary: string | null;
  warnings: string[];
  /** Worth knowing, but no reason to call the cluster unhealthy (old copies taking disk space). */
  notes: string[];
  nodes: NodeStatus[];
}

/**
 * Turns an observation into the status a user reads; pure, so every warning is unit-tested. An
 * operation left half-done (`journal`) makes the cluster unhealthy whatever the servers say, and
 * its warning comes first.
 */
export function buildStatus(
  spec: ClusterSpec,
  obs: ClusterObservation,
  journal: JournalEntry | null = null,
): ClusterStatus {
  const primaries = obs.nodes.filter((o) => roleOf(o) === 'primary');
  const primary = primaries.length === 1 ? primaries[0] : undefined;
  const answer = primary?.server?.ok ? primary.server : undefined;
  const warnings: string[] = journal
    ? [
        `\`pgrepl ${journal.resume.join(' ')}\` was interrupted during step "${journal.step}"; ` +
          'run `pgrepl resume` to finish it or `pgrepl abandon` to undo it',
      ]
    : [];
  if (primaries.length > 1) {
    warnings.push(
      `SPLIT BRAIN: ${primaries.map((p) => p.node.name).join(' and ')} both accept writes; stop all but one now`,
    );
  }
  if (primaries.length === 0) warnings.push('no primary is running: writes are impossible');

  const nodes = obs.nodes.map((o): NodeStatus => {
    const role = roleOf(o);
    const sender = answer?.senders.find((s) => s.applicationName === o.node.name);
    const slot = answer?.slots.find((s) => s.name === o.node.name);
    const server = o.server?.ok ? o.server : undefined;
    const wr = server?.walReceiver ?? null;
    const base = {
      name: o.node.name,
      host: o.node.host,
      port: o.node.port,
      dataDir: o.node.dataDir,
      local: o.dataDir.local,
      role,
      timeline: server?.instance.timeline ?? null,
      lsn: server ? (server.instance.currentLsn ?? server.instance.replayLsn) : null,
      receiveLsn: server?.instance.inRecovery ? replicaPosition(server.instance) : null,
      replayLsn: server?.instance.replayLsn ?? null,
      upstream: wr?.senderHost ? `${wr.senderHost}:${wr.senderPort}` : null,
      lagBytes: null,
      writeLagMs: null,
      flushLagMs: null,
      replayLagMs: null,
      syncState: null,
      slot: slot ? { name: slot.name, active: slot.active, retainedBytes: slot.retainedBytes } : null,
      pendingRestart: server ? [...server.pendingRestart] : [],
      archiver: server?.instance.archiver ?? null,
      tls: {
        replication: sender ? (sender.tls ?? 'none') : null,
        pgrepl: server ? (server.ownTls ?? 'none') : null,
      },
      error: o.server && !o.server.ok ? o.server.error : null,
    };
    if (role === 'primary') return { ...base, state: 'primary', slot: null };
    if (role !== 'replica') return { ...base, state: role };
    return {
      ...base,
      // The primary's pg_stat_replication is the measure (lag, sync state); a receiver that says it
      // streams while that list, read a moment apart, does not show it yet, streams all the same.
      state:
        sender?.state ??
        (wr?.status === 'streaming' ? 'streaming' : wr ? `receiver ${wr.status}` : 'disconnected'),
      lagBytes: sender?.lagBytes ?? null,
      writeLagMs: sender?.writeLagMs ?? null,
      flushLagMs: sender?.flushLagMs ?? null,
      replayLagMs: sender?.replayLagMs ?? null,
      syncState: sender?.syncState ?? null,
    };
  });

  if (spec.tls !== 'off') warnings.push(...plainConnections(nodes, primary?.node.name));
  for (const n of nodes)
    warnings.push(
      ...nodeWarnings(
        n,
        obs.nodes.find((o) => o.node.name === n.name),
        journal !== null,
      ),
    );
  // Split brain has its own warning above; status acts on nothing, so nothing needs to be local.
  const outside = topologyGuard(obs, { actsOn: [], allowSplitBrain: true });
  if (outside !== null) warnings.push(outside.reason);
  for (const o of obs.nodes) {
    if (o.divergence?.kind === 'diverged')
      warnings.push(
        `DIVERGED: ${o.node.name} ${o.divergence.reason}; it must not stream as it is: \`pgrepl rejoin ${o.node.name}\` re-clones it`,
      );
  }
  if (answer && primary && answer.replicationPasswordMatches === false)
    warnings.push(
      `the replication password pgrepl has is not the one role ${spec.replication.user} has on ${primary.node.name}: ` +
        '`pgrepl up` gives the role the new one (the replicas keep the old one until then)',
    );
  if (answer && primary) {
    for (const s of answer.slots) {
      if (!s.active && (s.retainedBytes ?? 0) > 0) {
        warnings.push(
          `slot ${s.name} on ${primary.node.name} is inactive and retains ${formatBytes(s.retainedBytes ?? 0)} of WAL`,
        );
      }
      if (s.walStatus === 'lost')
        warnings.push(
          `slot ${s.name} on ${primary.node.name} lost WAL its replica needs: \`pgrepl rejoin ${s.name}\` re-clones it`,
        );
      if (!spec.nodes.some((n) => n.name === s.name))
        warnings.push(`slot ${s.name} on ${primary.node.name} belongs to no node of the spec`);
    }
  }
  const archiver = answer?.instance.archiver;
  if (primary && archiver?.failing)
    warnings.push(
      `${primary.node.name} cannot archive ${archiver.lastFailedWal ?? 'its WAL'} (${archiver.failedCount} failed attempt(s)); ` +
        `${archiver.pendingSegments} segment(s) wait on its disk until it works: its server log says why (\`pgrepl logs ${primary.node.name}\`), ` +
        `and \`pgrepl backups\` shows the archive`,
    );
  const healthy =
    primaries.length === 1 &&
    nodes.every((n) => n.role === 'primary' || (n.role === 'replica' && n.state === 'streaming')) &&
    warnings.length === 0;
  const notes = obs.nodes.flatMap((o) => {
    const aside = o.dataDir.local ? o.dataDir.movedAside : [];
    if (aside.length === 0) return [];
    const k = aside.length;
    return [
      `${o.node.name}: ${k} old data director${k === 1 ? 'y' : 'ies'} that re-clones moved aside (${aside.join(', ')}): \`pgrepl clean --yes\` removes ${k === 1 ? 'it' : 'them'}`,
    ];
  });
  return { cluster: spec.cluster, healthy, primary: primary?.node.name ?? null, warnings, notes, nodes };
}

/** With TLS asked for, every connection that still runs without it, and what brings it on. */
function plainConnections(nodes: readonly NodeStatus[], primary: string | undefined): string[] {
  return nodes.flatMap((n) => [
    ...(n.tls.replication === 'none'
      ? [
          `${n.name} streams from ${primary ?? 'its primary'} without TLS; \`pgrepl up\` gives it the spec's TLS settings`,
        ]
      : []),
    ...(n.tls.pgrepl === 'none'
      ? [
          `${n.name} does not offer TLS yet (pgrepl reached it over this machine without); \`pgrepl up\` turns it on`,
        ]
      : []),
  ]);
}

function nodeWarnings(n: NodeStatus, o: NodeObservation | undefined, interrupted: boolean): string[] {
  const w: string[] = [];
  if (n.role === 'down' && o?.fenced)
    w.push(
      `${n.name} is down and fenced (a failover left it behind); \`pgrepl rejoin ${n.name}\` brings it back`,
    );
  else if (n.role === 'down' && o?.divergence?.kind !== 'diverged')
    // While a journal is there, `start` is refused: point at `resume` instead.
    w.push(
      `${n.name} is down (data in ${n.dataDir}); ` +
        (interrupted
          ? '`pgrepl resume` first (start is refused until then)'
          : `\`pgrepl start ${n.name}\` starts it`),
    );
  if (n.role === 'absent') w.push(`${n.name} has no data yet; \`pgrepl up\` creates it`);
  if (n.role === 'unreachable')
    w.push(
      /password authentication failed/.test(n.error ?? '')
        ? `${n.name} refuses pgrepl's superuser password: the one its secret holds is not the server's (${n.error})`
        : !n.local
          ? `${n.name} (${n.host}:${n.port}) does not answer: ${n.error ?? 'unknown error'}. It is on another host, ` +
            'so whether it is stopped or cut off must be checked there'
          : `${n.name} runs but does not answer: ${n.error ?? 'unknown error'}`,
    );
  // Not a reason to rejoin by itself: a replica that just restarted, or waits for its upstream,
  // catches up on its own; its log says why it does not stream.
  if (n.role === 'replica' && n.state !== 'streaming')
    w.push(`${n.name} is a replica but is not streaming (${n.state}); \`pgrepl logs ${n.name}\` says why`);
  const server = o?.server?.ok ? o.server : undefined;
  if (server?.instance.replayPaused === true)
    w.push(
      `${n.name}: its replay is paused (pg_is_wal_replay_paused): it falls behind and cannot be promoted; ` +
        `\`SELECT pg_wal_replay_resume()\` on ${n.name} resumes it`,
    );
  for (const u of server?.unappliedSettings ?? [])
    w.push(`${n.name}: setting ${u.name} from pgrepl's postgresql.conf is not in effect (${u.why})`);
  if (server && server.pendingRestart.length > 0)
    w.push(
      `${n.name}: pending restart for ${server.pendingRestart.join(', ')}: \`pgrepl restart ${n.name}\``,
    );
  return w;
}

/** 1536 -> "1.5 kB": IEC-ish but short, for tables and warnings. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
