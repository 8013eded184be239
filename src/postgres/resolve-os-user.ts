import { readFileSync } from 'node:fs';
import { PgreplError } from '../errors.js';
import type { RunAs } from './command-runner.js';

/**
 * PostgreSQL refuses to run as root, so when pgrepl runs as root every server program runs as
 * `osUser` instead; as anyone else, programs run as that user (undefined).
 */
export function resolveRunAs(
  osUser: string,
  uid = process.getuid?.() ?? 0,
  passwd = readPasswd(),
): RunAs | undefined {
  if (uid !== 0) return undefined;
  const entry = passwd
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[0] === osUser);
  if (!entry || entry.length < 7) {
    throw new PgreplError(
      'E_OS_USER',
      `pgrepl runs as root, and PostgreSQL must run as another user, but OS user "${osUser}" does not exist; ` +
        `install Debian's postgresql package (it creates "postgres"), create the user, or set postgres.osUser in the spec`,
    );
  }
  const id = Number(entry[2]);
  if (id === 0) {
    throw new PgreplError(
      'E_OS_USER',
      `postgres.osUser "${osUser}" is root; PostgreSQL refuses to run as root, pick another user`,
    );
  }
  return { name: osUser, uid: id, gid: Number(entry[3]), home: entry[5] || '/' };
}

function readPasswd(): string {
  try {
    return readFileSync('/etc/passwd', 'utf8');
  } catch {
    return '';
  }
}
