import { existsSync, readFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { PgreplError } from '../../errors.js';
import type { RunAs } from '../../postgres/command-runner.js';
import { ensureOwnedDir, writeOwnedFile } from '../../postgres/owned-paths.js';
import type { SecretRef } from '../../cluster-spec/cluster-spec.js';

/**
 * Reads a password from its source. A generated one is created on first use (`create`), 0600,
 * and never printed; a user file must not be readable by others.
 */
export function resolveSecret(
  ref: SecretRef,
  what: string,
  opts: {
    env: Readonly<Record<string, string | undefined>>;
    create: boolean;
    runAs: RunAs | undefined;
    /** What the secret is called in messages; default "password". */
    noun?: string;
  },
): string | undefined {
  const noun = opts.noun ?? 'password';
  switch (ref.kind) {
    case 'env': {
      const value = opts.env[ref.name];
      if (value === undefined || value === '') {
        throw new PgreplError(
          'E_SECRET',
          `the ${what} ${noun} comes from $${ref.name}, which is not set; export it or change the spec`,
        );
      }
      return value;
    }
    case 'file':
      return readSecretFile(ref.path, what, noun);
    case 'generated': {
      if (existsSync(ref.path)) return readSecretFile(ref.path, what, noun);
      if (!opts.create) return undefined;
      ensureOwnedDir(dirname(ref.path), 0o700, opts.runAs);
      const password = randomBytes(24).toString('base64url');
      writeOwnedFile(ref.path, `${password}\n`, 0o600, opts.runAs);
      return password;
    }
  }
}

function readSecretFile(path: string, whose: string, noun: string): string {
  const what = `${whose} ${noun}`;
  let mode: number;
  try {
    const st = statSync(path);
    if (!st.isFile())
      throw new PgreplError(
        'E_SECRET',
        `the ${what} file ${path} is not a file; name a file that holds the ${noun}`,
      );
    mode = st.mode;
  } catch (cause) {
    if (cause instanceof PgreplError) throw cause;
    throw new PgreplError('E_SECRET', `the ${what} file ${path} cannot be read; create it (mode 0600)`, {
      cause,
    });
  }
  if ((mode & 0o077) !== 0) {
    throw new PgreplError(
      'E_SECRET',
      `the ${what} file ${path} is readable by others (mode ${(mode & 0o777).toString(8)}); run \`chmod 600 ${path}\``,
    );
  }
  const value = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  if (value === '') throw new PgreplError('E_SECRET', `the ${what} file ${path} is empty`);
  return value;
}
