import Table from 'cli-table3';
import type { ClusterStatus } from '../cluster/decide/status-report.js';
import { formatBytes } from '../cluster/decide/status-report.js';

const dash = (v: unknown) => (v === null || v === undefined || v === '' ? '-' : String(v));
const ms = (v: number | null) => (v === null ? '-' : `${v.toFixed(0)} ms`);

/** The human `status` view: one row per node, then the warnings. */
export function formatStatus(s: ClusterStatus, pg: { version: string; binDir: string }): string {
  const table = new Table({
    head: [
      'node',
      'address',
      'role',
      'tl',
      'lsn',
      'received',
      'upstream',
      'state',
      'lag',
      'replay lag',
      'sync',
      'slot',
      'tls',
    ],
    style: { head: [], border: [], compact: true },
  });
  for (const n of s.nodes) {
    const slot = n.slot
      ? `${n.slot.name} ${n.slot.active ? 'active' : 'INACTIVE'}${n.slot.retainedBytes ? ` ${formatBytes(n.slot.retainedBytes)}` : ''}`
      : '-';
    table.push([
      n.name,
      `${n.host}:${n.port}`,
      n.role,
      dash(n.timeline),
      dash(n.lsn),
      n.role === 'replica' ? dash(n.receiveLsn) : '-',
      dash(n.upstream),
      n.pendingRestart.length > 0 ? `${n.state}, pending restart` : n.state,
      n.lagBytes === null ? '-' : formatBytes(n.lagBytes),
      n.role === 'replica' ? ms(n.replayLagMs) : '-',
      dash(n.syncState),
      slot,
      // A replica's stream as its primary sees it; for any other node, pgrepl's own connection.
      dash(n.role === 'replica' ? n.tls.replication : n.tls.pgrepl),
    ]);
  }
  const head = `cluster ${s.cluster}: ${s.healthy ? 'healthy' : 'NOT HEALTHY'} · primary ${s.primary ?? 'none'} · PostgreSQL ${pg.version} (${pg.binDir})`;
  const warnings = s.warnings.map((w) => `warning: ${w}`);
  const notes = s.notes.map((n) => `note: ${n}`);
  return [head, table.toString(), ...warnings, ...notes].join('\n');
}
