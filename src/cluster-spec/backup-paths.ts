import { dirname, join } from 'node:path';
import type { BackupRepo, NodeSpec } from './cluster-spec.js';
import type { PgbackrestConfFiles } from '../backup/pgbackrest-commands.js';

/** Where a node's pgBackRest files are on its host. Absolute paths. */
export interface PgbackrestPaths {
  /** Its pgbackrest.conf: the repository, and this node as pg1. */
  readonly confFile: string;
  /** The unix socket directory it listens on for pgBackRest (0700, the PostgreSQL OS user's). */
  readonly socketDir: string;
  /** pgBackRest's logs of the commands run for this node. */
  readonly logDir: string;
  /** pgBackRest's locks and asynchronous-archive spool. */
  readonly lockDir: string;
  /** The include directory (0700) whose file holds an S3 repository's keys; unused for a directory repository. */
  readonly secretDir: string;
}

/** Where pgBackRest's files live on the machine that runs `up`: under the state dir. */
export const backupStateDir = (stateDir: string) => join(stateDir, 'backup');

/**
 * The directory whose unix sockets the nodes of this machine listen on, for pgBackRest alone: it
 * reaches PostgreSQL through a socket only (its pg-host is for SSH or its own TLS server).
 */
export const backupSocketDir = (stateDir: string) => join(stateDir, 'sockets');

/** A node's pgBackRest files on the machine that runs `up` (all its nodes share logs and locks). */
export const localPgbackrestPaths = (stateDir: string, node: string): PgbackrestPaths => ({
  confFile: join(backupStateDir(stateDir), 'conf', `${node}.conf`),
  socketDir: backupSocketDir(stateDir),
  logDir: join(backupStateDir(stateDir), 'log'),
  lockDir: join(backupStateDir(stateDir), 'lock'),
  secretDir: join(backupStateDir(stateDir), 'secret'),
});

/** On a host of its own, a node keeps its pgBackRest files beside its data directory, like its passfile. */
export const pgbackrestPathsBeside = (node: NodeSpec): PgbackrestPaths => {
  const dir = join(dirname(node.dataDir), `${node.name}-pgbackrest`);
  return {
    confFile: join(dir, 'pgbackrest.conf'),
    socketDir: join(dir, 'sockets'),
    logDir: join(dir, 'log'),
    lockDir: join(dir, 'lock'),
    secretDir: join(dir, 'secret'),
  };
};

/** The files a node's pgBackRest reads: its conf, and with an S3 repository the keys' include directory. */
export const confFilesOf = (paths: PgbackrestPaths, repo: BackupRepo): PgbackrestConfFiles => ({
  confFile: paths.confFile,
  includeDir: repo.kind === 's3' ? paths.secretDir : null,
});
