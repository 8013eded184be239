import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { resolveSecret } from '../../src/cluster/context/resolve-secret.js';
import { PgreplError } from '../../src/errors.js';

describe('a password file', () => {
  it('that is a directory is a clear E_SECRET, not a stack trace (issue 11)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgrepl-secret-'));
    try {
      assert.throws(
        () =>
          resolveSecret({ kind: 'file', path: dir }, 'superuser', {
            env: {},
            create: false,
            runAs: undefined,
          }),
        (err: unknown) =>
          err instanceof PgreplError &&
          err.code === 'E_SECRET' &&
          err.message.endsWith('is not a file; name a file that holds the password'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
