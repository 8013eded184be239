import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderHostBundle } from '../../src/deploy/render-host-bundle.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { assertGolden } from '../helpers/golden.js';
import { certsWithoutKeys } from '../helpers/bundle-certs.js';

const spec = parseSpec(
  `cluster: shop
replication: { mode: sync, syncCount: 1 }
access: [{ cidr: 10.0.0.0/24, database: shop, user: app }]
nodes:
  - { name: db1, host: 10.0.0.11, port: 5432, dataDir: /var/lib/postgresql/15/shop }
  - { name: db2, host: 10.0.0.12, port: 5432, dataDir: /var/lib/postgresql/15/shop }
  - { name: db3, host: 10.0.0.13, port: 5432, dataDir: /var/lib/postgresql/15/shop }
`,
  'golden.yaml',
  '/',
);

describe('render conf golden files (UPDATE_GOLDEN=1 npm test rewrites them; review the diff)', () => {
  const files = renderHostBundle({
    spec,
    binDir: '/usr/lib/postgresql/15/bin',
    pgMajor: 15,
    secrets: undefined,
    // tls: auto (the nodes are on other hosts); without secrets, no key goes into the folders.
    certs: certsWithoutKeys(['db1', 'db2', 'db3']),
  });

  it('renders exactly the reviewed files', () => {
    assertGolden('host-bundle', files);
  });

  it('gives each replica its own slot and upstream, and every node replication rules for the other hosts', () => {
    const db2 = files.find((f) => f.path === 'db2/postgresql.conf')?.content ?? '';
    assert.match(db2, /^primary_slot_name = 'db2'$/m);
    assert.match(
      db2,
      /^primary_conninfo = 'host=10\.0\.0\.11 port=5432 user=replicator passfile=\/var\/lib\/postgresql\/15\/db2-replication\.pgpass application_name=db2/m,
    );
    assert.match(
      files.find((f) => f.path === 'db1/postgresql.conf')?.content ?? '',
      /^synchronous_standby_names = 'FIRST 1 \("db2", "db3"\)'$/m,
    );
    const hba = files.find((f) => f.path === 'db1/pg_hba.conf')?.content ?? '';
    for (const h of ['10.0.0.11', '10.0.0.12', '10.0.0.13'])
      assert.match(
        hba,
        new RegExp(
          `^hostssl\\s+replication\\s+replicator\\s+${h.replace(/\./g, '\\.')}/32\\s+scram-sha-256$`,
          'm',
        ),
      );
    assert.doesNotMatch(hba, /trust/);
    assert.doesNotMatch(hba, /^host\s/m, 'with TLS no rule admits a connection without it');
    assert.ok(
      files
        .filter((f) => f.path.endsWith('.env'))
        // 0600 even with placeholders: the README has the user write the real passwords into it.
        .every((f) => f.mode === 0o600 && f.content.includes("'change-me'")),
    );
  });

  it('ships each node its certificate and the CA, never a key without --with-secrets, and checks names', () => {
    assert.deepEqual(
      files.filter((f) => f.path.startsWith('db2/tls/')).map((f) => [f.path, f.mode]),
      [
        ['db2/tls/ca.crt', 0o644],
        ['db2/tls/db2.crt', 0o644],
      ],
    );
    const setup = files.find((f) => f.path === 'db2/setup.sh')?.content ?? '';
    assert.match(setup, /put tls\/\$f here first/, 'setup.sh refuses to go on without the key');
    assert.match(setup, /sslmode=verify-full sslrootcert=\/var\/lib\/postgresql\/15\/db2-tls\/ca\.crt/);
  });

  it('writes every README in English and in Portuguese, with the same commands', () => {
    const commands = (text: string) =>
      [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) =>
        (m[1] as string)
          .split('\n')
          .map((l) => l.replace(/(^|\s+)#.*$/, ''))
          .filter((l) => l !== '')
          .join('\n'),
      );
    const readmes = files.filter((f) => f.path.endsWith('/README.md') || f.path === 'README.md');
    assert.equal(readmes.length, 4, 'the index and one per node');
    for (const en of readmes) {
      const pt = files.find((f) => f.path === en.path.replace(/README\.md$/, 'README.pt-BR.md'));
      assert.ok(pt, `${en.path} has a Portuguese twin`);
      assert.deepEqual(commands(pt.content), commands(en.content), en.path);
      assert.match(pt.content, /primário/);
    }
  });
});
