/**
 * Read-your-writes tokens: the WAL position a write's COMMIT reached, as PostgreSQL prints an LSN
 * ("0/3000148"). A replica that replayed that far holds the write. The text is the whole token, so
 * that a web application can keep one in a cookie and hand it back with the next request.
 */
export type ReadToken = string;

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** The position a token names, to compare with another; throws on anything that is not one. */
export function tokenPosition(token: ReadToken): bigint {
  const m = LSN.exec(token.trim());
  if (!m) throw new TypeError(`not a read token (an LSN such as 0/3000148): ${JSON.stringify(token)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** Whether `token` is one (untrusted input: a cookie, a header). */
export function isReadToken(token: unknown): token is ReadToken {
  return typeof token === 'string' && LSN.test(token.trim());
}

/** The later of two tokens (a session keeps the latest of its writes). */
export function laterToken(a: ReadToken | null, b: ReadToken | null): ReadToken | null {
  if (a === null) return b;
  if (b === null) return a;
  return tokenPosition(b) > tokenPosition(a) ? b : a;
}
