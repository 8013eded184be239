/** Stable error codes; scripts and tests match on these, never on message text. */
export const ERROR_CODES = [
  'E_SPEC_NOT_FOUND',
  'E_SPEC_SYNTAX',
  'E_SPEC_INVALID',
  'E_SPEC_EXISTS',
  'E_NO_PG_BINARIES',
  'E_PORT_IN_USE',
  'E_SERVER_OUTSIDE_DATA_DIR',
  'E_NOT_LOCAL',
  'E_DIR_NOT_REACHABLE',
  'E_DATA_DIR_FOREIGN',
  'E_DATA_DIR_IN_USE',
  'E_OS_USER',
  'E_SECRET',
  'E_COMMAND_FAILED',
  'E_PRIMARY_UNREACHABLE',
  'E_UNREACHABLE',
  'E_NO_PRIMARY',
  'E_TWO_PRIMARIES',
  'E_UNKNOWN_NODE',
  'E_TIMEOUT',
  'E_WAL_REMOVED',
  'E_DIVERGED',
  'E_CONFIG_NOT_APPLIED',
  'E_CONFIRMATION_REQUIRED',
  'E_LOCKED',
  'E_INTERRUPTED_OPERATION',
  'E_INTERRUPTED',
  'E_TOO_FEW_REPLICAS',
  'E_LEFT_STOPPED',
  'E_NOT_RUNNING',
  'E_PRIMARY_RUNNING',
  'E_SYNC_UNCONFIRMED',
  'E_NOT_A_REPLICA',
  'E_IS_PRIMARY',
  'E_BEHIND',
  'E_UNHEALTHY',
  'E_NO_CANDIDATE',
  'E_FENCE_FAILED',
  'E_SWITCHOVER_ABANDONED',
  'E_BAD_KEEP',
  'E_OUTPUT_NOT_EMPTY',
  'E_SQL',
  'E_ETCD',
  'E_NO_ETCD',
  'E_NOT_LEADER',
  'E_PAUSED',
  'E_HA_ACTIVE',
  'E_UNAUTHORIZED',
  'E_BUSY',
  'E_FAILSAFE_REFUSED',
  'E_BACKUP_NOT_CONFIGURED',
  'E_NO_PGBACKREST',
  'E_BACKUP_REPO',
  'E_STANZA_MISMATCH',
  'E_NO_STANZA',
  'E_BACKUP_FAILED',
  'E_NO_BACKUP',
  'E_RESTORE_TARGET',
  'E_ARCHIVE_FAILING',
  'E_LOGICAL_PUBLISHER',
  'E_LOGICAL_PREFLIGHT',
  'E_UPGRADE_DRAIN',
  'E_UPGRADE_STATE',
  'E_USAGE',
  'E_NOT_RESUMABLE',
  'E_INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** An error a user can act on: a stable code, a message that says what to do, and the cause kept. */
export class PgreplError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PgreplError';
    this.code = code;
  }
}

/** A statement a server refused: which node, and PostgreSQL's own SQLSTATE for scripts to match. */
export class SqlError extends PgreplError {
  readonly node: string;
  readonly sqlstate: string | null;

  constructor(node: string, sqlstate: string | null, message: string, options?: { cause?: unknown }) {
    super('E_SQL', `${node}: ${message}${sqlstate ? ` (SQLSTATE ${sqlstate})` : ''}`, options);
    this.name = 'SqlError';
    this.node = node;
    this.sqlstate = sqlstate;
  }
}

/** Normalises anything thrown into a PgreplError at the CLI boundary, keeping the original as cause. */
export function toPgreplError(thrown: unknown): PgreplError {
  if (thrown instanceof PgreplError) return thrown;
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  return new PgreplError('E_INTERNAL', `unexpected error: ${message}`, { cause: thrown });
}
