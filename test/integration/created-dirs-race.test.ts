import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readState } from '../../src/cluster/store/cluster-state.js';
import { REPO } from '../helpers/test-cluster.js';

const STATE = join(REPO, 'dist', 'src', 'cluster', 'store', 'cluster-state.js');

describe('the record of the directories pgrepl created (issue 13)', () => {
  it('keeps every one when processes record theirs at the same moment (agents cloning at once)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgrepl-created-'));
    try {
      const startAt = Date.now() + 300;
      const dirs = Array.from({ length: 8 }, (_, i) => join(dir, 'data', `pg${i}`));
      await Promise.all(
        dirs.map(
          (d) =>
            new Promise<void>((resolve, reject) => {
              const child = spawn(
                process.execPath,
                [
                  '--input-type=module',
                  '-e',
                  `const { recordCreatedDir } = await import(${JSON.stringify(STATE)});
                   while (Date.now() < ${startAt}) {}
                   recordCreatedDir(${JSON.stringify(dir)}, 'race', ${JSON.stringify(d)}, undefined);`,
                ],
                { stdio: 'inherit' },
              );
              child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
            }),
        ),
      );
      assert.deepEqual([...readState(dir, 'race').createdDirs].sort(), [...dirs].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
