import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The installed package's root and version: the nearest directory up from this module whose
 * package.json is pgrepl's. It is found rather than written as a relative path because this module
 * runs from two places, tsc's output (dist/src/) and the bundle the CLI runs (dist/pgrepl.mjs).
 */
function findPackage(): { root: string; version: string } {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const m = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
      if (m.name === 'pgrepl') return { root: dir, version: m.version as string };
    }
    if (dirname(dir) === dir) throw new Error(`pgrepl's package.json is in no directory above ${start}`);
  }
}

const { root, version } = findPackage();

/** bin/pgrepl.js, which background agents are started with. */
export const CLI_SCRIPT = join(root, 'bin', 'pgrepl.js');

/** The fence watchdog, a small process of its own beside each agent (fence-watchdog.ts). */
export const FENCE_WATCHDOG_SCRIPT = join(root, 'dist', 'src', 'agent', 'fence-watchdog.js');

/**
 * Node's flags for the processes that run for as long as a node does: agents and their watchdogs.
 * Their work is a few queries and etcd requests a second, which V8's optimizing compilers never pay
 * back: without them an idle agent is ~6 MiB smaller and spends slightly less CPU (both measured by
 * `npm run bench:ha`). Lite mode has no WebAssembly (so no `fetch`, whose HTTP parser is
 * WebAssembly: pgrepl's HTTP is node:http); saying so keeps V8 from warning of it at every start.
 */
export const LONG_RUNNING_NODE_FLAGS: readonly string[] = ['--lite-mode', '--no-expose-wasm'];

/** This pgrepl's version, from its package.json: what an image built from a rendered bundle installs. */
export const PACKAGE_VERSION = version;
