import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { runCli } from '../helpers/test-cluster.js';
import { fuzzOptions } from '../helpers/fuzz-options.js';

/**
 * Commands a fuzzed command line may start with. Left out: those that make a cluster when they
 * succeed (`up`, `start`, `init`), run until stopped (`agent`, `logs --follow`, `status --watch`), or
 * hand the terminal to another program (`psql`).
 */
const COMMANDS = [
  'status',
  'switchover',
  'promote',
  'rejoin',
  'remove',
  'history',
  'url',
  'set-mode',
  'render',
  'logs',
  'clean',
  'stop',
  'restart',
  'reload',
  'pause',
  'unpause',
  'resume',
  'abandon',
  'down',
  'destroy',
  'rotate-certs',
  'scram-verifier',
  'no-such-command',
];
/** Words a fuzzed argument may be: real flags and node names, and things that are neither. */
const WORDS = [
  '--json',
  '--yes',
  '--to',
  '--force',
  '--reclone',
  '--keep',
  '--immediate',
  '--all',
  '--dry-run',
  '--node',
  '--out',
  'out',
  '--with-secrets',
  '--image',
  '--mode',
  'sync',
  'async',
  'quorum',
  '--count',
  '0',
  '-1',
  '99999',
  'pg1',
  'pg2',
  'pg9',
  'PG1',
  '',
  ' ',
  '--',
  '-c',
  'conf',
  'compose',
  '--no-such-flag',
  "x'; rm -rf /",
  '%s%n',
  '../../etc',
  'é',
  '--help',
];

const argv = fc.tuple(
  fc.constantFrom(...COMMANDS),
  fc.array(fc.oneof(fc.constantFrom(...WORDS), fc.string({ maxLength: 12 })), { maxLength: 5 }),
);

/** Every file under `dir` (but the spec cache) with a hash of its content: what a command changed. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (relative(dir, p) === 'cache') continue;
      if (e.isDirectory()) {
        out.set(`${relative(dir, p)}/`, '');
        walk(p);
      } else out.set(relative(dir, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

describe('fuzzed command lines (issue 13): a clear error with a code, and nothing changed when refused', () => {
  let base: string;

  before(() => {
    base = mkdtempSync(join(tmpdir(), 'pgrepl-fuzz-'));
    chmodSync(base, 0o755);
    writeFileSync(
      join(base, 'pgrepl.yaml'),
      'cluster: fuzz\nstateDir: state\nnodes:\n  - { name: pg1, port: 47001 }\n  - { name: pg2, port: 47002 }\n',
    );
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  it('names a directory given as the spec file, found by the fuzzer (it was E_INTERNAL: EISDIR)', async () => {
    for (const dir of ['', '.']) {
      const r = await runCli(['status', '-c', dir], {
        cwd: base,
        env: { XDG_CACHE_HOME: join(base, 'cache') },
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^pgrepl: error E_SPEC_NOT_FOUND: spec file \S+ is a directory/m);
    }
  });

  it('on a cluster that was never brought up', async () => {
    await fc.assert(
      fc.asyncProperty(argv, async ([command, args]) => {
        const before = snapshot(base);
        const r = await runCli([command, ...args], {
          cwd: base,
          env: { XDG_CACHE_HOME: join(base, 'cache') },
        });
        const line = `pgrepl ${[command, ...args].map((a) => JSON.stringify(a)).join(' ')}`;
        assert.ok([0, 1, 2, 3].includes(r.code), `${line}: exit ${r.code}\n${r.stderr}`);
        assert.doesNotMatch(
          r.stderr,
          /E_INTERNAL|TypeError|ReferenceError|at .*\.js:\d+/,
          `${line}\n${r.stderr}`,
        );
        if (r.code === 0 || r.code === 3) return;
        // pgrepl's errors, commander's usage errors, or the usage of a command given no subcommand.
        assert.match(
          r.stderr,
          /^(pgrepl: error E_[A-Z_]+: \S|error: \S|Usage: pgrepl )/m,
          `${line}\n${r.stderr}`,
        );
        assert.deepEqual(snapshot(base), before, `${line} was refused but changed files\n${r.stderr}`);
      }),
      fuzzOptions(40),
    );
  });
});
