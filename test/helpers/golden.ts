import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { REPO } from './test-cluster.js';

/**
 * Compares rendered files with the reviewed copies under test/golden/<name>; `UPDATE_GOLDEN=1 npm test`
 * rewrites them (review the diff before committing).
 */
export function assertGolden(name: string, files: readonly { path: string; content: string }[]): void {
  const root = join(REPO, 'test', 'golden', name);
  if (process.env['UPDATE_GOLDEN'] === '1') {
    for (const f of files) {
      mkdirSync(dirname(join(root, f.path)), { recursive: true });
      writeFileSync(join(root, f.path), f.content);
    }
  }
  assert.ok(existsSync(root), `golden files missing: run UPDATE_GOLDEN=1 npm test once and review ${root}`);
  const list = (dir: string): string[] =>
    readdirSync(dir).flatMap((e) =>
      statSync(join(dir, e)).isDirectory() ? list(join(dir, e)) : [relative(root, join(dir, e))],
    );
  assert.deepEqual(files.map((f) => f.path).sort(), list(root).sort());
  for (const f of files) assert.equal(f.content, readFileSync(join(root, f.path), 'utf8'), f.path);
}
