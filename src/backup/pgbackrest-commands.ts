import { shellQuote } from '../shell-quote.js';

/**
 * The archive_command of a node: pgBackRest pushes each finished segment (%p, relative to the data
 * directory, which its pg1-path names) to the repository. Found on the server's PATH, as the
 * restore_command pgBackRest itself writes finds it.
 */
export function archivePushCommand(stanza: string, conf: PgbackrestConfFiles): string {
  return `pgbackrest ${configOptions(conf)} --stanza=${stanza} archive-push %p`;
}

/**
 * The restore_command of a node: pgBackRest fetches segment %f from the repository into %p. A
 * standby whose upstream no longer holds the WAL it needs replays it from the archive, and pg_rewind
 * (--restore-target-wal) finds there what the node's own pg_wal lost.
 */
export function archiveGetCommand(stanza: string, conf: PgbackrestConfFiles): string {
  return `pgbackrest ${configOptions(conf)} --stanza=${stanza} archive-get %f "%p"`;
}

/** What a node's pgBackRest reads: its conf, and with an S3 repository the directory of the keys' include file. */
export interface PgbackrestConfFiles {
  readonly confFile: string;
  readonly includeDir: string | null;
}

/** pgBackRest's --config (and --config-include-path) options for a node's files. */
export function configOptions(conf: PgbackrestConfFiles): string {
  const config = `--config=${shellQuote(conf.confFile)}`;
  return conf.includeDir === null ? config : `${config} --config-include-path=${shellQuote(conf.includeDir)}`;
}
