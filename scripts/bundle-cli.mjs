// Bundles the CLI (and so the agent it runs) into dist/pgrepl.mjs, which bin/pgrepl.js loads, and
// the chunks beside it (dist/chunks/) that it imports when a command needs them. A few files of the
// code in use, instead of some four hundred modules resolved and compiled one by one: a command
// starts in ~0.12 s instead of 0.38 s (a rejoin and every command wait for it), and an agent holds
// only the source it runs. The library export (dist/src/index.js) stays tsc's output.
import { readFile } from 'node:fs/promises';
import { build } from 'esbuild';

/**
 * pg asks whether it runs in a Cloudflare Worker by constructing a fetch Response when it loads; in
 * Node 20 the first touch of `Response` loads undici, the fetch implementation: ~25 ms of every
 * command's start and ~5 MiB of an agent that never fetches. pgrepl runs on Node only.
 */
const noCloudflareProbe = {
  name: 'pg-no-cloudflare-probe',
  setup(b) {
    b.onLoad({ filter: /[\\/]pg[\\/]lib[\\/]stream\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const probe = "typeof Response === 'function'";
      if (!text.includes(probe))
        throw new Error(`${args.path} no longer has the probe "${probe}": look again`);
      return { contents: text.replace(probe, 'false'), loader: 'js' };
    });
  },
};

/**
 * prom-client's index loads every metric type, its push gateway (and with it https and zlib) and
 * its cluster aggregator: ~0.8 MiB of an agent that serves gauges and counters only. The bundle takes
 * the three classes pgrepl uses from their own files (the ones the index exports).
 */
const PROM_CLIENT_PARTS = { Registry: 'registry', Gauge: 'gauge', Counter: 'counter' };
const promClientCore = {
  name: 'prom-client-core',
  setup(b) {
    b.onResolve({ filter: /^prom-client$/ }, () => ({ path: 'prom-client', namespace: 'prom-client-core' }));
    b.onLoad({ filter: /.*/, namespace: 'prom-client-core' }, () => ({
      contents: `module.exports = { ${Object.entries(PROM_CLIENT_PARTS)
        .map(([name, file]) => `${name}: require('prom-client/lib/${file}')`)
        .join(', ')} };`,
      resolveDir: process.cwd(),
      loader: 'js',
    }));
  },
};

await build({
  entryPoints: { pgrepl: 'src/cli/main.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  // What the code imports lazily (zod, the YAML parser, and what only some commands use) goes
  // into chunks of its own: V8 keeps a script's whole source in memory, and an agent that never
  // loads zod would otherwise hold its 0.6 MB too.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // The CommonJS packages (pg, commander) call require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire as __pgreplRequire } from 'node:module';\nconst require = __pgreplRequire(import.meta.url);",
  },
  // pg asks for its optional native binding inside a try; pgrepl does not use it.
  external: ['pg-native'],
  plugins: [noCloudflareProbe, promClientCore],
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  logLevel: 'warning',
});

// The dashboard's page (dist/ui/): its script with preact and uPlot in it, and its style with
// uPlot's. Served by the agents from these files: nothing is fetched from outside, so the page
// works on a host without internet.
await build({
  entryPoints: { app: 'src/agent/dashboard/page/main.tsx' },
  outdir: 'dist/ui',
  bundle: true,
  platform: 'browser',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  format: 'esm',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  sourcemap: false,
  logLevel: 'warning',
});
await build({
  entryPoints: { app: 'src/agent/dashboard/page/app.css' },
  outdir: 'dist/ui',
  bundle: true,
  minify: true,
  logLevel: 'warning',
});
