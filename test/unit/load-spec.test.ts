import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PgreplError } from '../../src/errors.js';
import { EMBEDDED_SOURCE, loadSpec } from '../../src/cluster-spec/load-spec.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { renderSpecTemplate, TEMPLATE_DEFAULTS } from '../../src/cluster-spec/render-spec-template.js';

const fails = (text: string, code: string, message: RegExp) =>
  assert.throws(
    () => parseSpec(text, 'pgrepl.yaml', '/work'),
    (e: unknown) => e instanceof PgreplError && e.code === code && message.test(e.message),
  );

describe('spec', () => {
  it('fills defaults and resolves paths against the spec directory', () => {
    const spec = parseSpec(
      'cluster: demo\nnodes:\n  - { name: pg1, port: 5432 }\n  - { name: pg2, port: 5433, dataDir: /srv/pg2 }\n',
      'x',
      '/work',
    );
    assert.equal(spec.stateDir, '/work/.pgrepl');
    assert.equal(spec.nodes[0]?.host, '127.0.0.1');
    assert.equal(spec.nodes[0]?.dataDir, '/work/.pgrepl/data/pg1');
    assert.equal(spec.nodes[1]?.dataDir, '/srv/pg2');
    assert.equal(spec.replication.user, 'replicator');
    assert.deepEqual(spec.replication.password, {
      kind: 'generated',
      path: '/work/.pgrepl/secrets/replication.password',
    });
    assert.equal(spec.postgres.osUser, 'postgres');
    assert.ok(Object.isFrozen(spec) && Object.isFrozen(spec.nodes));
  });

  it('takes passwords from env or a file', () => {
    const spec = parseSpec(
      'cluster: d\nsuperuser: { password: { env: PGPW } }\nreplication: { password: { file: secret/repl } }\nnodes: [{ name: a, port: 5000 }]\n',
      'x',
      '/w',
    );
    assert.deepEqual(spec.superuser.password, { kind: 'env', name: 'PGPW' });
    assert.deepEqual(spec.replication.password, { kind: 'file', path: '/w/secret/repl' });
  });

  it('renders settings as PostgreSQL reads them', () => {
    const spec = parseSpec(
      'cluster: d\nsettings: { hot_standby_feedback: false, work_mem: 64MB, max_connections: 50 }\nnodes: [{ name: a, port: 5000 }]\n',
      'x',
      '/',
    );
    assert.deepEqual(spec.settings, { hot_standby_feedback: 'off', work_mem: '64MB', max_connections: '50' });
  });

  it('takes a WAL segment size for initdb: a power of two from 1 to 1024 MB', () => {
    const withSize = (n: number) =>
      `cluster: d\npostgres: { walSegmentSize: ${n} }\nnodes: [{ name: a, port: 5000 }]\n`;
    assert.equal(parseSpec(withSize(1), 'x', '/').postgres.walSegmentSize, 1);
    assert.equal(
      parseSpec('cluster: d\nnodes: [{ name: a, port: 5000 }]\n', 'x', '/').postgres.walSegmentSize,
      undefined,
    );
    fails(withSize(3), 'E_SPEC_INVALID', /postgres\.walSegmentSize: a power of two from 1 to 1024 \(MB\)/);
    fails(withSize(2048), 'E_SPEC_INVALID', /postgres\.walSegmentSize: a power of two/);
  });

  it('places a type error at its line and column', () => {
    fails(
      'cluster: d\nnodes:\n  - name: pg1\n    port: "x"\n',
      'E_SPEC_INVALID',
      /^invalid spec, nothing was changed:\npgrepl\.yaml:4:11: nodes\.0\.port: .*number/,
    );
  });

  it('names an unknown key', () => {
    fails(
      'cluster: d\nreplicas: 2\nnodes: [{ name: a, port: 5000 }]\n',
      'E_SPEC_INVALID',
      /pgrepl\.yaml:1:1: \(top level\): .*"replicas"/,
    );
  });

  it('rejects duplicate names, ports and data dirs', () => {
    fails(
      'cluster: d\nnodes:\n  - { name: a, port: 5000 }\n  - { name: a, port: 5000 }\n',
      'E_SPEC_INVALID',
      /pgrepl\.yaml:4:13: nodes\.1\.name: name a is already used by nodes\[0\][\s\S]*nodes\.1\.port: port 127\.0\.0\.1:5000 is already used/,
    );
  });

  it('says a repeated name once, not again as the data directory it repeats (issue 11)', () => {
    assert.throws(
      () =>
        parseSpec(
          'cluster: d\nnodes:\n  - { name: a, port: 5000 }\n  - { name: a, port: 5001 }\n',
          'pgrepl.yaml',
          '/w',
        ),
      (err: unknown) => {
        assert.ok(err instanceof PgreplError);
        assert.match(err.message, /nodes\.1\.name: name a is already used by nodes\[0\]/);
        assert.doesNotMatch(err.message, /dataDir/);
        return true;
      },
    );
  });

  it('rejects a wildcard host: nobody can connect to 0.0.0.0', () => {
    fails(
      'cluster: d\nnodes: [{ name: a, host: 0.0.0.0, port: 5000 }]\n',
      'E_SPEC_INVALID',
      /nodes\.0\.host: .*wildcard like 0\.0\.0\.0/,
    );
  });

  it('rejects node names that cannot be slot names', () => {
    fails(
      'cluster: d\nnodes: [{ name: Pg-1, port: 5000 }]\n',
      'E_SPEC_INVALID',
      /nodes\.0\.name: lower-case letters/,
    );
  });

  it('rejects settings pgrepl owns, and wal_level minimal', () => {
    fails(
      'cluster: d\nsettings: { primary_conninfo: x }\nnodes: [{ name: a, port: 5000 }]\n',
      'E_SPEC_INVALID',
      /settings\.primary_conninfo: primary_conninfo cannot be set here: pgrepl points each replica/,
    );
    fails(
      'cluster: d\nsettings: { wal_level: minimal }\nnodes: [{ name: a, port: 5000 }]\n',
      'E_SPEC_INVALID',
      /wal_level minimal cannot stream/,
    );
  });

  it('requires at least one node', () => {
    fails('cluster: d\nnodes: []\n', 'E_SPEC_INVALID', /nodes: at least one node/);
  });

  it('reports YAML syntax errors with their position', () => {
    fails('cluster: d\nnodes: [\n', 'E_SPEC_SYNTAX', /^pgrepl\.yaml:\d+:\d+: not valid YAML/);
  });

  it('rejects data directories that are equal, nested, or in the state dir, on one machine (issue 9.5)', () => {
    const spec = (nodes: string) => `cluster: d\nnodes:\n${nodes}`;
    fails(
      spec('  - { name: a, port: 5000, dataDir: d/x }\n  - { name: b, port: 5001, dataDir: d/x/y }\n'),
      'E_SPEC_INVALID',
      /pgrepl\.yaml:4:37: nodes\.1\.dataDir: dataDir \/work\/d\/x\/y lies inside the dataDir of nodes\[0\]/,
    );
    fails(
      spec('  - { name: a, port: 5000, dataDir: d/x/y }\n  - { name: b, port: 5001, dataDir: d/x }\n'),
      'E_SPEC_INVALID',
      /nodes\.1\.dataDir: dataDir \/work\/d\/x holds the dataDir of nodes\[0\]/,
    );
    // 127.0.0.1 and 127.0.0.2 are one machine, one disk.
    fails(
      spec(
        '  - { name: a, port: 5000, dataDir: /srv/a }\n  - { name: b, host: 127.0.0.2, port: 5000, dataDir: /srv/a }\n',
      ),
      'E_SPEC_INVALID',
      /nodes\.1\.dataDir: dataDir \/srv\/a is also the dataDir of nodes\[0\]/,
    );
    fails(
      spec('  - { name: a, port: 5000, dataDir: .pgrepl }\n'),
      'E_SPEC_INVALID',
      /nodes\.0\.dataDir: dataDir \/work\/\.pgrepl holds the state dir/,
    );
    fails(
      spec('  - { name: a, port: 5000, dataDir: .pgrepl/secrets }\n'),
      'E_SPEC_INVALID',
      /nodes\.0\.dataDir: dataDir \/work\/\.pgrepl\/secrets lies in the state dir/,
    );
    fails(
      spec('  - { name: a, port: 5000, dataDir: /srv/a.pgrepl-clone }\n'),
      'E_SPEC_INVALID',
      /a name pgrepl uses for its own copies/,
    );
  });

  it('refuses a replication user that is the superuser (issue 9.11)', () => {
    fails(
      'cluster: d\nreplication: { user: postgres }\nnodes: [{ name: a, port: 5000 }]\n',
      'E_SPEC_INVALID',
      /replication\.user: the replication user must not be the superuser \(postgres\)/,
    );
  });

  it('accepts the same path on different machines, siblings, and the default layout', () => {
    const ok = [
      '  - { name: a, host: db1, port: 5000, dataDir: /srv/pg }\n  - { name: b, host: db2, port: 5000, dataDir: /srv/pg }\n',
      '  - { name: a, port: 5000, dataDir: /srv/pg }\n  - { name: b, port: 5001, dataDir: /srv/pg2 }\n',
      '  - { name: a, port: 5000 }\n  - { name: b, port: 5001 }\n',
    ];
    for (const nodes of ok)
      assert.doesNotThrow(() => parseSpec(`cluster: d\nnodes:\n${nodes}`, 'x', '/work'));
  });

  it('uses the embedded default when there is no pgrepl.yaml, and it equals what init writes', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'pgrepl-cache-'));
    const spec = await loadSpec({ cwd: '/nonexistent-dir', env: { XDG_CACHE_HOME: cache } });
    rmSync(cache, { recursive: true, force: true });
    assert.equal(spec.source, EMBEDDED_SOURCE);
    assert.deepEqual(
      spec.nodes.map((n) => `${n.name}@${n.host}:${n.port}`),
      ['pg1@127.0.0.1:54321', 'pg2@127.0.0.1:54322', 'pg3@127.0.0.1:54323'],
    );
    assert.equal(spec.stateDir, '/nonexistent-dir/.pgrepl');
    const written = parseSpec(renderSpecTemplate(TEMPLATE_DEFAULTS), 'x', '/nonexistent-dir');
    assert.deepEqual({ ...written, source: EMBEDDED_SOURCE }, spec);
  });
});

describe('the parse cache', () => {
  const setup = () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgrepl-spec-'));
    const env = { XDG_CACHE_HOME: join(dir, 'cache') };
    const spec = (name: string) =>
      writeFileSync(join(dir, 'pgrepl.yaml'), `cluster: ${name}\nnodes:\n  - name: a\n    port: 6001\n`);
    return { dir, env, spec, entries: () => readdirSync(join(dir, 'cache', 'pgrepl')) };
  };

  it('serves an unchanged spec from the cache and parses a changed one again', async () => {
    const { dir, env, spec, entries } = setup();
    try {
      spec('one');
      assert.equal((await loadSpec({ cwd: dir, env })).cluster, 'one');
      const [entry] = entries();
      assert.ok(entry, 'a cache entry was written');
      const file = join(dir, 'cache', 'pgrepl', entry);
      // Served from the cache: what the entry says is what comes back.
      const cached = JSON.parse(readFileSync(file, 'utf8')) as { spec: { cluster: string } };
      writeFileSync(file, JSON.stringify({ ...cached, spec: { ...cached.spec, cluster: 'from-cache' } }));
      assert.equal((await loadSpec({ cwd: dir, env })).cluster, 'from-cache');
      // A changed text is parsed again, and replaces the entry.
      spec('two');
      assert.equal((await loadSpec({ cwd: dir, env })).cluster, 'two');
      assert.equal(entries().length, 1);
      writeFileSync(file, 'not json');
      assert.equal((await loadSpec({ cwd: dir, env })).cluster, 'two');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never caches an invalid spec', async () => {
    const { dir, env } = setup();
    try {
      writeFileSync(join(dir, 'pgrepl.yaml'), 'cluster: x\nnodes: []\n');
      for (let i = 0; i < 2; i++)
        await assert.rejects(loadSpec({ cwd: dir, env }), (e: Error) => /at least one node/.test(e.message));
      assert.equal(existsSync(join(dir, 'cache', 'pgrepl')), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
