import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { canMakeHosts, makeTestHosts } from '../helpers/netns-hosts.js';
import type { TestHosts } from '../helpers/netns-hosts.js';
import { pgBin, runCli } from '../helpers/test-cluster.js';
import type { StatusJson } from '../helpers/test-cluster.js';

const SECRETS = { MH_SUPERUSER: 'su-Secret:1', MH_REPLICATION: 're-Secret\\2' };

/**
 * Three hosts, each with its own network namespace and its own disk, set up by hand with the files
 * `pgrepl render conf` writes, as an operator would on real machines; `pgrepl status` runs from a
 * fourth namespace that has none of their files and must see the cluster through SQL alone.
 */
describe(
  'status of a cluster whose nodes run on other hosts',
  { skip: !canMakeHosts() && 'needs root, ip and unshare' },
  () => {
    let base: string;
    let net: TestHosts;
    let spec: string;
    const status = (o: { json?: boolean } = {}) =>
      runCli(['status', '-c', spec, ...(o.json === false ? [] : ['--json'])], {
        within: ['ip', 'netns', 'exec', net.operator.netns],
        env: SECRETS,
      });

    before(async () => {
      base = mkdtempSync(join(tmpdir(), 'pgrepl-hosts-'));
      chmodSync(base, 0o755);
      const disk = join(base, 'disk');
      net = await makeTestHosts(['pg1', 'pg2', 'pg3'], disk);
      spec = join(base, 'pgrepl.yaml');
      writeFileSync(
        spec,
        [
          'cluster: hosts',
          `stateDir: ${join(base, 'state')}`,
          'superuser: { password: { env: MH_SUPERUSER } }',
          'replication: { password: { env: MH_REPLICATION } }',
          // The operator's machine reaches every node as the superuser.
          `access: [{ cidr: ${net.operator.address}/32, user: postgres, database: all }]`,
          'nodes:',
          ...net.hosts.map(
            (h) => `  - { name: ${h.name}, host: ${h.address}, port: 5432, dataDir: ${disk}/${h.name} }`,
          ),
          '',
        ].join('\n'),
      );
      const bundle = join(base, 'bundle');
      const r = await runCli(['render', 'conf', '-c', spec, '--out', bundle, '--with-secrets'], {
        env: SECRETS,
      });
      assert.equal(r.code, 0, r.stderr);
      // Each folder goes to its host's own disk, and setup.sh runs there as the PostgreSQL user: the
      // primary first, then the replicas, as the bundle's README says.
      for (const h of net.hosts) {
        const copy = net.run(h, [
          'sh',
          '-c',
          `cp -r "$1" "$2/setup" && chown -R postgres:postgres "$2"`,
          'sh',
          join(bundle, h.name),
          disk,
        ]);
        assert.equal(copy.code, 0, copy.out);
        const setup = net.run(h, [join(disk, 'setup', 'setup.sh')], { user: 'postgres' });
        assert.equal(setup.code, 0, `${h.name} setup.sh: ${setup.out}`);
      }
    });

    after(() => {
      net?.destroy();
      if (base) rmSync(base, { recursive: true, force: true });
    });

    it('keeps each host’s data on that host alone', () => {
      assert.deepEqual(
        readdirSync(join(base, 'disk')),
        [],
        'the machine running the test sees no host’s files',
      );
      const [h1, h2] = net.hosts;
      assert.ok(h1 && h2);
      assert.equal(net.run(h2, ['test', '-e', join(base, 'disk', 'pg1', 'PG_VERSION')]).code, 1);
      assert.equal(net.run(h1, ['test', '-e', join(base, 'disk', 'pg1', 'PG_VERSION')]).code, 0);
    });

    it('shows them healthy with their roles, lag and slots, read over the network', async () => {
      const r = await status();
      assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
      const s = JSON.parse(r.stdout) as StatusJson;
      assert.equal(s.healthy, true, s.warnings.join('\n'));
      assert.equal(s.primary, 'pg1');
      assert.deepEqual(
        s.nodes.map((n) => [n.name, n.role, n.state, n.local]),
        [
          ['pg1', 'primary', 'primary', false],
          ['pg2', 'replica', 'streaming', false],
          ['pg3', 'replica', 'streaming', false],
        ],
      );
      for (const n of s.nodes.slice(1)) {
        assert.equal(typeof n.lagBytes, 'number', `${n.name} has a lag`);
        assert.deepEqual(n.slot && [n.slot.name, n.slot.active], [n.name, true]);
        assert.equal(n.upstream, `${net.hosts[0]?.address}:5432`);
      }
    });

    it('says so, and exits 3, when a replica is stopped on its host', async () => {
      const pg3 = net.hosts[2];
      assert.ok(pg3);
      const stop = net.run(
        pg3,
        [join(pgBin(), 'pg_ctl'), 'stop', '-D', join(base, 'disk', 'pg3'), '-m', 'fast', '-w'],
        {
          user: 'postgres',
        },
      );
      assert.equal(stop.code, 0, stop.out);
      const r = await status();
      assert.equal(r.code, 3, `${r.stdout}${r.stderr}`);
      const s = JSON.parse(r.stdout) as StatusJson;
      assert.equal(s.healthy, false);
      assert.deepEqual(
        s.nodes.map((n) => [n.name, n.role]),
        [
          ['pg1', 'primary'],
          ['pg2', 'replica'],
          ['pg3', 'unreachable'],
        ],
      );
      assert.ok(
        s.warnings.some((w) => /^pg3 \(10\.251\.0\.13:5432\) does not answer: .*on another host/.test(w)),
        s.warnings.join('\n'),
      );
      const human = await status({ json: false });
      assert.equal(human.code, 3);
      assert.match(human.stdout, /NOT HEALTHY · primary pg1/);
    });

    it('refuses to change a node it cannot reach the files of, and changes nothing', async () => {
      const r = await runCli(['switchover', '--to', 'pg2', '-c', spec], {
        within: ['ip', 'netns', 'exec', net.operator.netns],
        env: SECRETS,
      });
      assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
      assert.match(
        r.stderr,
        /E_NOT_LOCAL: pg1 \(10\.251\.0\.11\), pg2 \(10\.251\.0\.12\), pg3 \(10\.251\.0\.13\) are on another host/,
      );
      const s = JSON.parse((await status()).stdout) as StatusJson;
      assert.equal(s.primary, 'pg1');
    });
  },
);
