import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/**
 * Computes a SCRAM-SHA-256 verifier on the client, as psql's \password does, so CREATE/ALTER ROLE
 * never carries the password itself: a server that logs statements logs only the verifier.
 * Format (RFC 5803, as PostgreSQL stores it): SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>.
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * Whether `verifier` (as pg_authid stores it) was made from `password`: recomputed with its own
 * salt and iteration count, so a changed password is seen without the server ever sending it.
 */
export function verifierMatches(password: string, verifier: string | null): boolean {
  const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(verifier ?? '');
  if (!m) return false;
  return scramVerifier(password, Buffer.from(m[2] as string, 'base64'), Number(m[1])) === verifier;
}
