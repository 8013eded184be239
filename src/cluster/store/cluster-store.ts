import type { JournalEntry } from './journal.js';

/**
 * What the commands that change one cluster share, wherever they run: the lock that lets one of
 * them act at a time, the journal of the operation under way, and the nodes a failover fenced.
 * Files in the state dir today (fileStore); etcd in HA mode, where the agents of several hosts
 * must agree on it. Asynchronous for that reason.
 */
export interface ClusterStore {
  /** Runs `fn` holding the cluster's lock; fails with E_LOCKED while another command holds it. */
  withLock<T>(command: string, fn: () => Promise<T>): Promise<T>;
  readJournal(): Promise<JournalEntry | null>;
  writeJournal(entry: JournalEntry): Promise<void>;
  clearJournal(): Promise<void>;
  /** Former primaries a failover fenced: never started as a primary again, only rejoined. */
  fencedNodes(): Promise<readonly string[]>;
  setFenced(node: string, fenced: boolean): Promise<void>;
}
