import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { RunAs } from '../../postgres/command-runner.js';
import { writeOwnedFile } from '../../postgres/owned-paths.js';
import { withClusterLock } from './cluster-lock.js';
import { readState, setFenced } from './cluster-state.js';
import type { ClusterStore, HistoryEntry } from './cluster-store.js';
import type { JournalEntry } from './cluster-store.js';

export const journalPath = (stateDir: string) => join(stateDir, 'journal.json');
export const historyPath = (stateDir: string) => join(stateDir, 'history.jsonl');

/** The ClusterStore of one machine: `<stateDir>.lock`, `<stateDir>/journal.json` and `state.json`. */
export function fileStore(stateDir: string, cluster: string, runAs: RunAs | undefined): ClusterStore {
  return {
    withLock: (command, fn) => withClusterLock(stateDir, command, fn),
    async readJournal() {
      try {
        return JSON.parse(readFileSync(journalPath(stateDir), 'utf8')) as JournalEntry;
      } catch {
        return null;
      }
    },
    async writeJournal(entry) {
      writeOwnedFile(journalPath(stateDir), `${JSON.stringify(entry, null, 2)}\n`, 0o600, runAs);
    },
    async clearJournal() {
      rmSync(journalPath(stateDir), { force: true });
    },
    fencedNodes: async () => readState(stateDir, cluster).fenced,
    setFenced: async (node, fenced) => setFenced(stateDir, cluster, node, fenced, runAs),
    async appendHistory(entry) {
      const path = historyPath(stateDir);
      const before = existsSync(path) ? readFileSync(path, 'utf8') : '';
      writeOwnedFile(path, `${before}${JSON.stringify(entry)}\n`, 0o600, runAs);
    },
    async readHistory() {
      try {
        return readFileSync(historyPath(stateDir), 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as HistoryEntry);
      } catch {
        return [];
      }
    },
  };
}
