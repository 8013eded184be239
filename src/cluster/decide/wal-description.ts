import { lsnDiff } from '../../postgres/lsn.js';
import type { LostWal } from '../../postgres/run-rewind.js';

/** "0/5000028–0/5012345 (73 kB) with 12 commits (xids 750–761)" */
export function describeDiscarded(d: LostWal): string {
  const bytes = d.to === null ? null : lsnDiff(d.to, d.from);
  const xids = d.commits.map((c) => c.xid);
  const range =
    d.to === null
      ? `from ${d.from} on (where it ends could not be read)`
      : `${d.from}–${d.to} (${bytes} bytes)`;
  if (xids.length === 0) return `WAL ${range} with no commits`;
  return `WAL ${range} with ${xids.length} commit(s) (xids ${Math.min(...xids)}–${Math.max(...xids)}), first at ${d.commits[0]?.lsn}`;
}
