import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { renderSystemdBundle } from '../../src/deploy/render-systemd-bundle.js';
import type { SystemdBundleInput } from '../../src/deploy/render-systemd-bundle.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { assertGolden } from '../helpers/golden.js';
import { certsWithoutKeys } from '../helpers/bundle-certs.js';

const TEXT = `# the shop's database
cluster: shop
ha:
  profile: fast   # sub-second failover
nodes:
  - { name: db1, host: 10.0.0.11, port: 5432 }
  - { name: db2, host: 10.0.0.12, port: 5432, dataDir: data/db2 }
  - { name: db3, host: 10.0.0.13, port: 5432, dataDir: /srv/pg/db3 }
  - { name: db4, host: 10.0.0.14, port: 5432 }
`;

const bundle = (text: string, o: Partial<SystemdBundleInput> = {}) =>
  renderSystemdBundle({
    spec: parseSpec(text, 'golden.yaml', '/'),
    specText: text,
    certs: certsWithoutKeys(['db1', 'db2', 'db3', 'db4']),
    generatedSecrets: undefined,
    ...o,
  });

const file = (files: ReturnType<typeof bundle>, path: string) => {
  const f = files.find((x) => x.path === path);
  assert.ok(f, `${path} is rendered`);
  return f;
};

describe('render systemd (issue 13)', () => {
  const files = bundle(TEXT);

  it('renders exactly the reviewed files (UPDATE_GOLDEN=1 npm test rewrites them; review the diff)', () => {
    assertGolden('systemd-bundle', files);
  });

  it('gives every host the same spec: host paths, the etcd members over TLS, comments kept', () => {
    const texts = new Set(['db1', 'db2', 'db3', 'db4'].map((n) => file(files, `${n}/pgrepl.yaml`).content));
    assert.equal(texts.size, 1);
    const [text] = [...texts] as [string];
    assert.match(text, /# sub-second failover/);
    const spec = parseSpec(text, '/etc/pgrepl/shop/pgrepl.yaml', '/etc/pgrepl/shop');
    assert.equal(spec.stateDir, '/var/lib/pgrepl/shop');
    assert.deepEqual(spec.ha?.etcd, [
      'https://10.0.0.11:2379',
      'https://10.0.0.12:2379',
      'https://10.0.0.13:2379',
    ]);
    assert.equal(spec.ha?.etcdTls?.cert, '/etc/pgrepl/shop/agent-tls/client.crt');
    // A relative data directory would land under /etc: it goes under the state dir instead.
    assert.deepEqual(
      spec.nodes.map((n) => n.dataDir),
      [
        '/var/lib/pgrepl/shop/data/db1',
        '/var/lib/pgrepl/shop/data/db2',
        '/srv/pg/db3',
        '/var/lib/pgrepl/shop/data/db4',
      ],
    );
  });

  it('runs an etcd member on the first three hosts only, each checking its peers and clients', () => {
    assert.deepEqual(
      files.filter((f) => f.path.endsWith('etcd.conf.yml')).map((f) => f.path),
      ['db1/etcd.conf.yml', 'db2/etcd.conf.yml', 'db3/etcd.conf.yml'],
    );
    const conf = file(files, 'db2/etcd.conf.yml').content;
    assert.match(
      conf,
      /^initial-cluster: db1=https:\/\/10\.0\.0\.11:2380,db2=https:\/\/10\.0\.0\.12:2380,db3=https:\/\/10\.0\.0\.13:2380$/m,
    );
    assert.match(conf, /^listen-client-urls: https:\/\/10\.0\.0\.12:2379$/m);
    assert.equal(
      conf.match(/client-cert-auth: true/g)?.length,
      2,
      'clients and peers both show a certificate',
    );
    assert.match(conf, /^election-timeout: 500$/m, 'the fast profile needs short elections');
    assert.match(file(files, 'db4/pgrepl-shop-agent.service').content, /^After=network-online.target$/m);
  });

  it("keeps PostgreSQL and the watchdog through an agent's restart", () => {
    const unit = file(files, 'db1/pgrepl-shop-agent.service').content;
    assert.match(unit, /^KillMode=process$/m);
    assert.match(unit, /^User=postgres$/m);
    assert.match(
      unit,
      /^ExecStart=\/usr\/bin\/env pgrepl -c \/etc\/pgrepl\/shop\/pgrepl\.yaml agent --node db1$/m,
    );
  });

  it('passes systemd-analyze verify', { skip: hasSystemdAnalyze() ? false : 'no systemd-analyze' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgrepl-units-'));
    try {
      const units = files.filter((f) => f.path.startsWith('db1/') && f.path.endsWith('.service'));
      assert.equal(units.length, 2);
      const paths = units.map((u) => {
        const p = join(dir, u.path.slice('db1/'.length));
        writeFileSync(p, u.content);
        return p;
      });
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...paths], { encoding: 'utf8' });
      // Only what is wrong with the units themselves: a host without etcd's binary is install.sh's to report.
      const problems = `${r.stderr}${r.stdout}`
        .split('\n')
        .filter((l) => l.trim() !== '' && !/\/usr\/bin\/etcd is not executable/.test(l));
      assert.deepEqual(problems, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ships no key and no password without --with-secrets, and install.sh asks for them', () => {
    assert.ok(!files.some((f) => f.path.endsWith('.key') || f.path.includes('/secrets/')));
    const install = file(files, 'db1/install.sh').content;
    assert.match(install, /put \$f here first/);
    const withSecrets = bundle(TEXT, {
      certs: {
        ...certsWithoutKeys(['db1', 'db2', 'db3', 'db4']),
        nodes: Object.fromEntries(['db1', 'db2', 'db3', 'db4'].map((n) => [n, { cert: 'C', key: 'K' }])),
      },
      generatedSecrets: { superuser: 'su-pw', replication: 'repl-pw' },
    });
    for (const path of [
      'db3/tls/db3.key',
      'db3/secrets/superuser.password',
      'db3/secrets/replication.password',
    ])
      assert.equal(file(withSecrets, path).mode, 0o600, path);
  });

  it('installs no etcd where the spec names its own, and refuses members that share a host', () => {
    const own = bundle(
      TEXT.replace(
        'ha:\n',
        'ha:\n  etcd: [https://etcd.example:2379]\n  etcdTls: { ca: /etc/ssl/etcd-ca.crt }\n',
      ),
    );
    assert.ok(!own.some((f) => f.path.includes('etcd')));
    assert.match(file(own, 'db1/pgrepl.yaml').content, /etcd: \[ ?https:\/\/etcd\.example:2379 ?\]/);
    assert.throws(
      () => bundle(TEXT.replace('10.0.0.12, port: 5432', '10.0.0.11, port: 5433')),
      (e: Error & { code?: string }) => e.code === 'E_USAGE' && /hosts of their own/.test(e.message),
    );
  });

  it('writes every README in English and in Portuguese, with the same commands', () => {
    const commands = (text: string) => [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
    const readmes = files.filter((f) => f.path.endsWith('README.md'));
    assert.equal(readmes.length, 5, 'the index and one per host');
    for (const en of readmes) {
      const pt = file(files, en.path.replace(/README\.md$/, 'README.pt-BR.md'));
      assert.deepEqual(commands(pt.content), commands(en.content), en.path);
    }
  });
});

function hasSystemdAnalyze(): boolean {
  return spawnSync('systemd-analyze', ['--version']).status === 0;
}
