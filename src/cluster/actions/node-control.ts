import type { SqlSession } from '../../postgres/sql-client.js';
import type { LatestCheckpoint } from '../../postgres/read-controldata.js';
import type { RewindOutcome } from '../../postgres/run-rewind.js';
import type { CloneProgress } from '../../postgres/run-basebackup.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import { notLocalDisk, notLocalError } from '../observe/node-disk.js';
import type { NodeDisk } from '../observe/node-disk.js';
import type { NodeConfig } from '../decide/render-node-config.js';
import type { RepositoryRestore } from './backup-actions.js';

/** What a clone needs besides the node: where from (a conninfo without password) and its config. */
export interface CloneRequest {
  readonly conninfo: string;
  /** The node's own files, written into the copy before it is moved into place. */
  readonly config: NodeConfig;
  readonly onProgress?: (p: CloneProgress) => void;
  /** Restore from the backup repository instead of copying the upstream (pgBackRest's options). */
  readonly fromRepository?: RepositoryRestore;
  /**
   * Copy the upstream's data directory on this machine under a backup started and stopped on it,
   * instead of pg_basebackup, which the installation lacks (a bare server package).
   */
  readonly fromDataDir?: {
    readonly dir: string;
    readonly onUpstream: <T>(fn: (s: SqlSession) => Promise<T>) => Promise<T>;
  };
}

/**
 * Every effect on one node: its processes, its configuration files, its data directory. Operations
 * reach a node only through this (and read its disk through the NodeDisk it extends); SQL goes to
 * it over the network and needs no control. The local implementation acts on this machine's files;
 * a node on another host has a control that refuses (its agent will act there instead). Long
 * effects (clone, rewind) end at once when the context's `abort` signal is aborted.
 */
export interface NodeControl extends NodeDisk {
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
  /** Removes a point-in-time restore's recovery target from postgresql.auto.conf, once it was reached. */
  clearRecoveryTargets(): void;
  /** initdb into a new directory recorded as pgrepl's, with `config`; the node is then started. */
  initPrimary(config: NodeConfig): Promise<void>;
  /** Copies the upstream with pg_basebackup into a temporary sibling and moves it into place when complete. */
  clone(req: CloneRequest): Promise<void>;
  /** Moves an initialised data directory aside (`<dataDir>.pgrepl-old-<time>`); returns where, or null. */
  moveAside(): string | null;
  /** Deletes one of them (and nothing else). */
  removeMovedAside(dir: string): void;
  /** pg_rewind of the stopped node from a running source. */
  rewind(sourceConninfo: string): Promise<RewindOutcome>;
}

/**
 * The control of a node on another host: its disk facts are `not-local`, and every effect refuses
 * rather than reach for files that are not on this machine.
 */
export function notLocalControl(node: NodeSpec): NodeControl {
  const refuse = (): never => {
    throw notLocalError(node);
  };
  // Asynchronous effects refuse as rejected promises, so that `.catch()` sees the refusal too.
  const reject = () => Promise.reject(notLocalError(node));
  return {
    ...notLocalDisk(node),
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
    clearRecoveryTargets: refuse,
    initPrimary: reject,
    clone: reject,
    moveAside: refuse,
    removeMovedAside: refuse,
    rewind: reject,
  };
}
