import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
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

test("`pgrepl/client` resolves to the application's pool, with its type declarations", async () => {
  const client = await import('pgrepl/client');
  for (const name of ['createClusterPool', 'ClusterPool', 'ClusterPoolError', 'isReadToken'])
    assert.equal(typeof (client as Record<string, unknown>)[name], 'function', name);
  const pkgPath = createRequire(import.meta.url).resolve('pgrepl/package.json');
  assert.ok(existsSync(join(dirname(pkgPath), 'dist/src/client/index.d.ts')));
});

// The CLI is a bundle split into chunks that it imports as commands need them: a package without
// one of them would fail only when that command runs.
test('the package ships the CLI bundle and every chunk it imports', () => {
  const root = dirname(createRequire(import.meta.url).resolve('pgrepl/package.json'));
  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' }),
  ) as { files: { path: string }[] }[];
  const shipped = new Set(packed?.files.map((f) => f.path));
  const chunks = readdirSync(join(root, 'dist', 'chunks')).filter((f) => f.endsWith('.mjs'));
  assert.ok(chunks.length > 0, 'the bundle is split');
  for (const f of ['bin/pgrepl.js', 'dist/pgrepl.mjs', ...chunks.map((c) => `dist/chunks/${c}`)])
    assert.ok(shipped.has(f), `${f} is in the package`);
});
