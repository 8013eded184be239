/** What the pool's own errors can say; a query's SQL error reaches the caller as pg raised it. */
export type ClusterPoolErrorCode =
  /** No node answered as the primary within failoverTimeoutMs. */
  | 'E_NO_PRIMARY'
  /**
   * The connection was lost after the write (or the COMMIT) was sent: it may or may not have
   * committed. Never retried by the pool: only the application knows whether doing it again is safe.
   */
  | 'E_OUTCOME_UNKNOWN'
  /** The options given to createClusterPool are wrong; nothing was started. */
  | 'E_CLIENT_OPTIONS'
  /** The pool was ended. */
  | 'E_POOL_ENDED';

export class ClusterPoolError extends Error {
  override readonly name = 'ClusterPoolError';

  constructor(
    readonly code: ClusterPoolErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
