import { PgreplError } from '../../errors.js';
import type { DataDirState } from '../../postgres/instance-control.js';
import type { ControlData, LatestCheckpoint } from '../../postgres/read-controldata.js';
import type { LostWal } from '../../postgres/run-rewind.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import type { LocalDataDir, NotLocal } from './observation.js';

/**
 * Every read of one node's own disk: its data directory, control file, WAL and server log. Where
 * its host is this machine, the files themselves (local-node-disk.ts); elsewhere every read but
 * readDisk refuses. Observation reads through this; actions' NodeControl extends it with effects.
 */
export interface NodeDisk {
  readonly node: NodeSpec;
  /** The disk facts observation reports: `{ local: false }` where the node is not on this machine. */
  readDisk(createdByPgrepl: (dir: string) => boolean): LocalDataDir | NotLocal;
  /** Whether a postmaster runs for the data directory, whether it is initialised and a standby. */
  state(): DataDirState;
  /** backup_label present: a copy that has not finished its first recovery. */
  hasBackupLabel(): boolean;
  /** The directories moveAside() left, oldest first. */
  movedAside(): string[];
  readControlData(): Promise<ControlData>;
  /** The latest checkpoint, read from the control file in-process where its layout is known. */
  latestCheckpoint(): Promise<LatestCheckpoint>;
  /** `length` bytes of the node's own WAL at `lsn`; null when it has no such segment. */
  readWal(timeline: number, lsn: bigint, length: number, segmentBytes: number): Buffer | null;
  /** The oldest WAL segment of `timeline` the node still has. */
  oldestWalSegment(timeline: number): string | undefined;
  /**
   * The newest timeline of any WAL segment in its pg_wal: what a standby whose WAL receiver is down
   * received last (its SQL functions then fall back to its last restartpoint, which can be older).
   */
  newestWalTimeline(): number | null;
  /** Start positions of the WAL records from `from` to `to` (pg_waldump). */
  listRecordStarts(timeline: number, from: bigint, to: bigint): Promise<bigint[]>;
  /**
   * Where the node's valid WAL on the control file's timeline ends, read from its last checkpoint
   * (pg_waldump); null when that cannot be told.
   */
  walEnd(control: ControlData): Promise<string | null>;
  /** The commits in the node's WAL from `from` on (pg_waldump); null when its WAL cannot be read. */
  commitsAfter(from: string, control?: ControlData): Promise<LostWal | null>;
  /** Length of the server log now, to read what comes after it (logSince). */
  logLength(): number;
  logSince(offset: number): string;
  /** The last `lines` lines of the server log (8: for error messages). */
  logTail(lines?: number): string;
}

/** Why a read or an effect on the files of a node on another host is refused. */
export function notLocalError(node: NodeSpec): PgreplError {
  return new PgreplError(
    'E_NOT_LOCAL',
    `${node.name} (${node.host}) is on another host: pgrepl changes a node's files and processes only on that ` +
      "node's own machine. Run this command there; `pgrepl status` works from anywhere",
  );
}

/** The disk of a node on another host: its facts are `not-local`, and every read refuses. */
export function notLocalDisk(node: NodeSpec): NodeDisk {
  const refuse = (): never => {
    throw notLocalError(node);
  };
  const reject = () => Promise.reject(notLocalError(node));
  return {
    node,
    readDisk: () => ({ local: false }),
    state: refuse,
    hasBackupLabel: refuse,
    movedAside: refuse,
    readControlData: reject,
    latestCheckpoint: reject,
    readWal: refuse,
    oldestWalSegment: refuse,
    newestWalTimeline: refuse,
    listRecordStarts: reject,
    walEnd: reject,
    commitsAfter: reject,
    logLength: refuse,
    logSince: refuse,
    logTail: refuse,
  };
}
