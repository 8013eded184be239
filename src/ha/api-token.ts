import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PgreplError } from '../errors.js';

/**
 * The bearer token of the agents' mutating endpoints (restart, stop, switchover, pause, …): one
 * secret file per cluster, 0600, never in argv or logs. `up --ha` makes it on this machine; on
 * other hosts the same file is copied there.
 */
export function ensureApiToken(file: string): void {
  if (existsSync(file)) return;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
}

/**
 * The token, or null when there is no file (the agent then refuses every mutating request). A file
 * others may read is refused, as ssh and libpq refuse theirs: the token must stay the operators'.
 */
export function readApiToken(file: string): string | null {
  if (!existsSync(file)) return null;
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0)
    throw new PgreplError(
      'E_SECRET',
      `${file} is readable by others (mode ${mode.toString(8)}): \`chmod 600 ${file}\`; the agents' API token must be the operators' alone`,
    );
  const token = readFileSync(file, 'utf8').trim();
  if (token.length < 16)
    throw new PgreplError('E_SECRET', `${file} holds no token of at least 16 characters`);
  return token;
}

/** Whether an Authorization header carries `token` (compared in constant time). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1] as string);
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}
