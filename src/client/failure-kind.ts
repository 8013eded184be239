/**
 * What a failed query tells the pool, from the error alone: whether the node is still the one to
 * send it to, and whether the query can have taken effect. The pool retries only what cannot have.
 */
export type FailureKind =
  /** The node refused it before running it (read-only: it is no primary now). Nothing was applied. */
  | 'not-primary'
  /** The connection failed before the query was sent: nothing was applied; the node may be down. */
  | 'not-sent'
  /** The connection or the server went away after the query was sent: it may or may not have run. */
  | 'outcome-unknown'
  /** An ordinary SQL error (a constraint, a syntax error): the application's to handle. */
  | 'sql';

/** SQLSTATE classes of a server going away: 08 connection exception, 57P admin/crash shutdown. */
const GONE = /^(08|57P)/;

/**
 * `sent`: whether the query had been handed to a connection that was open. pg's own errors
 * ("Connection terminated unexpectedly", ECONNRESET) carry no SQLSTATE.
 */
export function failureKind(err: unknown, sent: boolean): FailureKind {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  if (code === '25006') return 'not-primary';
  if (!sent) return 'not-sent';
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !GONE.test(code)) return 'sql';
  return 'outcome-unknown';
}
