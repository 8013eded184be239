import type { JournalEntry } from '../store/journal.js';
import type { ClusterStatus } from './status-report.js';

/** An operation left half-done makes the cluster unhealthy whatever the servers say; status says what to run. */
export function withInterruption(status: ClusterStatus, journal: JournalEntry | null): ClusterStatus {
  if (!journal) return status;
  const warning =
    `\`pgrepl ${journal.resume.join(' ')}\` was interrupted during step "${journal.step}"; ` +
    'run `pgrepl resume` to finish it or `pgrepl abandon` to undo it';
  // While the journal is there, `start` is refused: point at `resume` instead.
  const others = status.warnings.map((w) =>
    w.replace(/; `pgrepl start \S+` starts it$/, '; `pgrepl resume` first (start is refused until then)'),
  );
  return { ...status, healthy: false, warnings: [warning, ...others] };
}
