/** One change of topology or mode, kept after its journal is gone: `pgrepl history`. */
export interface HistoryEntry {
  readonly at: string;
  readonly op: 'promote' | 'switchover' | 'rejoin' | 'set-mode' | 'failover' | 'initialize';
  /** The node the operation made primary (initialize: the first one), rejoined, or (set-mode) the primary then. */
  readonly node: string | null;
  /** The former primary (promote, switchover) or the primary rejoined to. */
  readonly from: string | null;
  /** The timeline of the primary once it was done. */
  readonly timeline: number | null;
  /** Where it happened in the WAL: the promotion point, the shutdown checkpoint, … */
  readonly lsn: string | null;
  readonly durationMs: number;
  readonly reason: string;
}

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
  appendHistory(entry: HistoryEntry): Promise<void>;
  /** Oldest first. */
  readHistory(): Promise<readonly HistoryEntry[]>;
}

/** What a topology operation is doing, written before each step so a crash leaves a trace. */
export interface JournalEntry {
  readonly op: 'promote' | 'switchover' | 'rejoin';
  /** The command line that resumes it. */
  readonly resume: string[];
  /** Facts later steps and an undo need (e.g. the old primary's name). */
  readonly facts: Readonly<Record<string, string>>;
  readonly pid: number;
  readonly startedAt: string;
  /** The step being performed (not yet known to be complete). */
  readonly step: string;
  readonly done: readonly string[];
}
