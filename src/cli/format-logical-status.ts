import { formatBytes } from '../cluster/decide/status-report.js';
import type { LogicalStatus } from '../cluster/operations/read-logical-status.js';

/** `status`'s lines for logical replication; a subscription that does not stream is a warning. */
export function formatLogicalStatus(l: LogicalStatus): string {
  const lines: string[] = [];
  for (const p of l.publications)
    lines.push(
      `publication ${p.name} (${p.database}): ${p.tables === null ? 'not made yet; `pgrepl up` makes it' : p.tables === 'all' ? 'all tables' : `${p.tables} table${p.tables === 1 ? '' : 's'}`}`,
    );
  for (const s of l.slots)
    lines.push(
      `  slot ${s.name}: ${s.active ? 'a subscriber streams' : 'no subscriber connected'}, ${formatBytes(s.lagBytes)} not yet confirmed, ${formatBytes(s.retainedBytes)} of WAL kept for it`,
    );
  for (const s of l.subscriptions) {
    const total = Object.values(s.tables).reduce((a, b) => a + b, 0);
    const state =
      s.state === 'missing'
        ? 'not made yet; `pgrepl up` makes it'
        : s.state === 'disabled'
          ? `disabled (ALTER SUBSCRIPTION ${s.name} ENABLE)`
          : s.slotMissing
            ? "WARNING: its slot is not on the publisher's primary (a failover of the publisher before PostgreSQL 17 loses it): `pgrepl up` copies its tables again through a new one"
            : s.state === 'down'
              ? 'WARNING: its apply worker does not run (the server log says why)'
              : 'streaming';
    const lag = s.lagBytes === null ? '' : `, ${formatBytes(s.lagBytes)} behind the publisher`;
    const age =
      s.lastMessageAgeSeconds === null ? '' : `, last message ${s.lastMessageAgeSeconds.toFixed(1)} s ago`;
    lines.push(
      `subscription ${s.name} (${s.database}) to ${s.publication}: ${state}; ${s.tables.r}/${total} tables ready${s.copying.length > 0 ? ` (copying: ${s.copying.join(', ')})` : ''}${lag}${age}`,
    );
  }
  for (const e of l.errors) lines.push(`warning: logical replication could not be read: ${e}`);
  return `logical replication:\n${lines.map((x) => `  ${x}`).join('\n')}`;
}
