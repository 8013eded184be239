import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';

// The exports map is what a script (and later `pgrepl/client`) resolves: it must point at built
// files with their type declarations beside them.
test('package exports resolve to the built API with type declarations', async () => {
  const api = await import('pgrepl');
  for (const name of ['loadSpec', 'buildContext', 'observeCluster', 'buildStatus', 'PgreplError'])
    assert.equal(typeof (api as Record<string, unknown>)[name], 'function', name);
  const pkgPath = createRequire(import.meta.url).resolve('pgrepl/package.json');
  assert.ok(existsSync(join(dirname(pkgPath), 'dist/src/index.d.ts')));
});
