import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { processRunner } from '../../src/postgres/command-runner.js';
import { syncFileSystem } from '../../src/postgres/sync-file-system.js';

describe('syncFileSystem', () => {
  it('flushes the file system of a directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgrepl-sync-'));
    try {
      await syncFileSystem(processRunner, dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails with the directory named when it cannot be opened', async () => {
    const missing = join(tmpdir(), 'pgrepl-sync-missing-dir');
    await assert.rejects(syncFileSystem(processRunner, missing), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'E_COMMAND_FAILED');
      assert.match(err.message, /flushing the file system of .*pgrepl-sync-missing-dir to disk failed/);
      return true;
    });
  });
});
