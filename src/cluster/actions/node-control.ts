import { PgreplError } from '../../errors.js';
import type { DataDirState } from '../../postgres/instance-control.js';
import type { ControlData, LatestCheckpoint } from '../../postgres/read-controldata.js';
import type { LostWal, RewindOutcome } from '../../postgres/run-rewind.js';
import type { CloneProgress } from '../../postgres/run-basebackup.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import type { LocalDataDir, NotLocal } from '../observe/observation.js';
import type { NodeConfig } from '../decide/render-node-config.js';

/** What a clone needs besides the node: where from (a conninfo without password) and its config. */
export interface CloneRequest {
  readonly conninfo: string;
  /** The node's own files, written into the copy before it is moved into place. */
  readonly config: NodeConfig;
  readonly onProgress?: (p: CloneProgress) => void;
}

/**
 * Every effect on one node, and every read of its disk: its processes, its configuration files,
 * its data directory, its WAL and its log. Operations reach a node only through this; SQL goes to
 * it over the network and needs no control. The local implementation acts on this machine's files;
 * a node on another host has a control that refuses (its agent will act there instead). Long
 * effects (clone, rewind) end at once when the context's `abort` signal is aborted.
 */
export interface NodeControl {
  readonly node: NodeSpec;
  /** The disk facts observation reports: `{ local: false }` where the node is not on this machine. */
  readDisk(createdByPgrepl: (dir: string) => boolean): LocalDataDir | NotLocal;
  /** Whether a postmaster runs for the data directory, whether it is initialised and a standby. */
  state(): DataDirState;
  /** Starts a stopped node (a no-op if it runs), after checking that its port is free. */
  start(): Promise<void>;
  /** Stops the node if it runs. */
  stop(mode: 'fast' | 'immediate'): Promise<void>;
  /**
   * Asks a running node for a fast shutdown and returns its control file once that says "shut
   * down", or once the postmaster is gone if it never does (a shutdown that failed: the state tells).
   * From "shut down" on the server takes no write: its shutdown checkpoint, the last record it
   * writes, comes after every backend has exited, and it admits no new one. Its walsenders may
   * still be sending that record, and the postmaster may still run: `stop` waits for that.
   */
  shutDownCleanly(): Promise<LatestCheckpoint>;
  /** Waits until a postmaster that was stopped or killed is really gone (an unreaped zombie keeps its lock). */
  waitGone(): Promise<void>;
  /**
   * Makes sure the node cannot take writes: a fast stop if it answers within 10 s, otherwise its
   * whole process group is killed. Says how, or throws when even that failed.
   */
  fence(): Promise<'stopped' | 'killed' | 'not running'>;
  restart(): Promise<void>;
  /** Makes a running server re-read its configuration; nothing when it is stopped. */
  reload(): Promise<void>;
  /** Writes the node's postgresql.conf and pg_hba.conf (and clears settings pgrepl owns from postgresql.auto.conf). */
  writeConfig(config: NodeConfig): void;
  /** Turns a stopped data directory into a standby: `config` plus standby.signal. */
  makeStandby(config: NodeConfig): void;
  /** Removes standby.signal, so that the directory starts as a primary. */
  clearStandbySignal(): void;
  /** backup_label present: a copy that has not finished its first recovery. */
  hasBackupLabel(): boolean;
  /** initdb into a new directory recorded as pgrepl's, with `config`; the node is then started. */
  initPrimary(config: NodeConfig): Promise<void>;
  /** Copies the upstream with pg_basebackup into a temporary sibling and moves it into place when complete. */
  clone(req: CloneRequest): Promise<void>;
  /** Moves an initialised data directory aside (`<dataDir>.pgrepl-old-<time>`); returns where, or null. */
  moveAside(): string | null;
  /** The directories moveAside() left, oldest first. */
  movedAside(): string[];
  /** Deletes one of them (and nothing else). */
  removeMovedAside(dir: string): void;
  /** pg_rewind of the stopped node from a running source. */
  rewind(sourceConninfo: string): Promise<RewindOutcome>;
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

/**
 * The control of a node on another host: its disk facts are `not-local`, and every effect refuses
 * rather than reach for files that are not on this machine.
 */
export function notLocalControl(node: NodeSpec): NodeControl {
  const notLocal = () =>
    new PgreplError(
      'E_NOT_LOCAL',
      `${node.name} (${node.host}) is on another host: pgrepl changes a node's files and processes only on that ` +
        "node's own machine. Run this command there; `pgrepl status` works from anywhere",
    );
  const refuse = (): never => {
    throw notLocal();
  };
  // Asynchronous effects refuse as rejected promises, so that `.catch()` sees the refusal too.
  const reject = () => Promise.reject(notLocal());
  return {
    node,
    readDisk: () => ({ local: false }),
    state: refuse,
    start: reject,
    stop: reject,
    shutDownCleanly: reject,
    waitGone: reject,
    fence: reject,
    restart: reject,
    reload: reject,
    writeConfig: refuse,
    makeStandby: refuse,
    clearStandbySignal: refuse,
    hasBackupLabel: refuse,
    initPrimary: reject,
    clone: reject,
    moveAside: refuse,
    movedAside: refuse,
    removeMovedAside: refuse,
    rewind: reject,
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
