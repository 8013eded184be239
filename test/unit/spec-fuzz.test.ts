import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { PgreplError } from '../../src/errors.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { fuzzOptions } from '../helpers/fuzz-options.js';

/** A spec that parses, as an object: the fuzzer breaks one part of it at a time. */
const VALID = {
  cluster: 'shop',
  tls: 'auto',
  replication: { mode: 'sync', syncCount: 1, password: { env: 'REPL' } },
  settings: { shared_buffers: '128MB' },
  access: [{ cidr: '10.0.0.0/24', database: 'app', user: 'app' }],
  ha: { etcd: ['https://10.0.0.1:2379'], etcdTls: { ca: 'ca.crt' }, profile: 'fast' },
  nodes: [
    { name: 'pg1', host: '10.0.0.11', port: 5432 },
    { name: 'pg2', host: '10.0.0.12', port: 5432, tls: undefined },
  ],
};

type Json = unknown;

/** Every path to a value of `v`, with the value itself. */
function paths(v: Json, at: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(v)) return [at, ...v.flatMap((x, i) => paths(x, [...at, i]))];
  if (v !== null && typeof v === 'object')
    return [at, ...Object.entries(v).flatMap(([k, x]) => paths(x, [...at, k]))];
  return [at];
}

/** `v` with the value at `path` replaced (undefined: removed). */
function setAt(v: Json, path: readonly (string | number)[], value: Json): Json {
  if (path.length === 0) return value;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  // A named key on an array makes it an object (YAML has no array with named keys).
  const copy = (Array.isArray(v) && typeof head === 'number' ? [...v] : { ...(v as object) }) as Record<
    string | number,
    Json
  >;
  copy[head] = setAt(copy[head], rest, value);
  if (copy[head] === undefined) delete copy[head];
  return copy;
}

const ALL_PATHS = paths(VALID);

/** The base spec with one value replaced by anything JSON can hold, removed, or a key added. */
const brokenSpec = fc.oneof(
  fc
    .record({ path: fc.constantFrom(...ALL_PATHS), value: fc.option(fc.jsonValue(), { nil: undefined }) })
    .map(({ path, value }) => setAt(VALID, path, value)),
  fc
    .record({ path: fc.constantFrom(...ALL_PATHS), key: fc.string({ maxLength: 12 }), value: fc.jsonValue() })
    .map(({ path, key, value }) => setAt(VALID, [...path, key], value)),
);

/** What every rejected spec must be: a PgreplError with a spec code, placed at file:line:col. */
function assertClearError(err: unknown, text: string): void {
  assert.ok(err instanceof PgreplError, `not a PgreplError for:\n${text}\n${String(err)}`);
  assert.ok(['E_SPEC_SYNTAX', 'E_SPEC_INVALID'].includes(err.code), `${err.code} for:\n${text}`);
  assert.match(err.message, /fuzz\.yaml:\d+:\d+: /, `no file:line:col for:\n${text}\n${err.message}`);
}

describe('bad spec files (issue 13: fuzzed with fast-check)', () => {
  it('the base spec the fuzzer breaks parses', () => {
    assert.equal(parseSpec(stringify(VALID), 'fuzz.yaml', '/').tls, 'auto');
  });

  it('end in a spec or a clear error with a code and a place, never in a crash', () => {
    fc.assert(
      fc.property(brokenSpec, (spec) => {
        const text = stringify(spec ?? null);
        try {
          parseSpec(text, 'fuzz.yaml', '/');
        } catch (err) {
          assertClearError(err, text);
        }
      }),
      fuzzOptions(2000),
    );
  });

  it('and so do texts that are not YAML, or barely', () => {
    const yamlish = fc.stringMatching(/^[a-z:{}[\]\-,"' \n#&*!|>%@`0-9]{0,80}$/);
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), yamlish), (text) => {
        try {
          parseSpec(text, 'fuzz.yaml', '/');
        } catch (err) {
          assertClearError(err, text);
        }
      }),
      fuzzOptions(2000),
    );
  });
});
