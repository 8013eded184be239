import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { haveEtcd } from '../helpers/ha-agents.js';
import { canMakeHosts, makeTestHosts } from '../helpers/netns-hosts.js';
import type { TestHost, TestHosts } from '../helpers/netns-hosts.js';
import { CLI, runCli, waitUntil } from '../helpers/test-cluster.js';
import type { StatusJson } from '../helpers/test-cluster.js';

/** Where the bundle installs on a host: each test host gets a private tmpfs over every one of them. */
const HOST_DIRS = ['/etc/pgrepl', '/var/lib/pgrepl', '/var/lib/pgrepl-etcd', '/etc/systemd/system'];

type Status = Omit<StatusJson, 'nodes'> & {
  nodes: (StatusJson['nodes'][number] & { tls: { replication: string | null } })[];
};

/**
 * `render systemd` on three hosts (a network namespace and private disks each): every folder's
 * install.sh runs as root on its host, unchanged; then what each installed unit's ExecStart and
 * User say runs there (the etcd member, the agent), as systemd would start it. The agents form the
 * cluster over TLS; the operator's commands run from a fourth namespace (issue 13).
 */
describe(
  'render systemd: installed on three hosts, the units form a cluster over TLS',
  {
    skip: !canMakeHosts()
      ? 'needs root, ip and unshare'
      : haveEtcd
        ? false
        : 'no etcd binary (apt-get install etcd-server)',
  },
  () => {
    let base: string;
    let net: TestHosts;
    const madeDirs: string[] = [];
    const bin = () => join(base, 'bin');

    /** Starts `argv` on `host` as `user`, in the background, its output in the host's log. */
    const startOn = (host: TestHost, user: string, argv: string[], log: string) => {
      const fd = openSync(log, 'a');
      spawn(
        'nsenter',
        [
          ...['-t', String(host.keeper.pid), '-m', '-n', '--'],
          ...['runuser', '-u', user, '--', 'env', `PATH=${bin()}:/usr/sbin:/usr/bin:/sbin:/bin`],
          'XDG_CACHE_HOME=/var/lib/pgrepl/rs/cache',
          ...argv,
        ],
        { stdio: ['ignore', fd, fd], detached: true, cwd: '/' },
      ).unref();
      closeSync(fd);
    };

    /** A unit's ExecStart and User, as installed on `host`. */
    const unitOn = (host: TestHost, unit: string) => {
      const text = net.run(host, ['cat', `/etc/systemd/system/${unit}`]).out;
      const field = (k: string) => text.match(new RegExp(`^${k}=(.*)$`, 'm'))?.[1] ?? '';
      return { user: field('User'), argv: field('ExecStart').split(' ') };
    };

    const operator = () => join(base, 'operator', 'pgrepl.yaml');
    const status = async (): Promise<Status> => {
      const r = await runCli(['-c', operator(), 'status', '--json'], {
        within: ['ip', 'netns', 'exec', net.operator.netns],
        env: { XDG_CACHE_HOME: join(base, 'cache') },
      });
      return JSON.parse(r.stdout) as Status;
    };

    before(async () => {
      base = mkdtempSync(join(tmpdir(), 'pgrepl-systemd-'));
      chmodSync(base, 0o755);
      for (const d of HOST_DIRS)
        if (!existsSync(d)) {
          mkdirSync(d, { recursive: true });
          madeDirs.push(d);
        }
      net = await makeTestHosts(['n1', 'n2', 'n3'], join(base, 'disk'));
      // What a host has on its PATH: pgrepl, and a systemctl that starts nothing (the test does).
      mkdirSync(bin(), { mode: 0o755 });
      writeFileSync(join(bin(), 'pgrepl'), `#!/bin/sh\nexec ${process.execPath} ${CLI} "$@"\n`, {
        mode: 0o755,
      });
      writeFileSync(
        join(bin(), 'systemctl'),
        '#!/bin/sh\ncase "$1" in is-enabled|is-active) exit 1;; esac\nexit 0\n',
        { mode: 0o755 },
      );
      const spec = join(base, 'pgrepl.yaml');
      writeFileSync(
        spec,
        [
          'cluster: rs',
          'ha:',
          '  profile: fast',
          // The operator's machine reaches every node as the superuser.
          `access: [{ cidr: ${net.operator.address}/32, user: postgres, database: all }]`,
          'nodes:',
          ...net.hosts.map((h) => `  - { name: ${h.name}, host: ${h.address}, port: 5432 }`),
          '',
        ].join('\n'),
      );
      const bundle = join(base, 'bundle');
      const r = await runCli(['-c', spec, 'render', 'systemd', '--out', bundle, '--with-secrets'], {
        env: { XDG_CACHE_HOME: join(base, 'cache') },
      });
      assert.equal(r.code, 0, r.stderr);
      for (const h of net.hosts) {
        const folder = join(base, 'disk', 'bundle');
        const prepared = net.run(h, [
          'sh',
          '-c',
          'for d in "$@"; do mount -t tmpfs -o mode=0755 tmpfs "$d" || exit 1; done',
          'sh',
          ...HOST_DIRS,
        ]);
        assert.equal(prepared.code, 0, prepared.out);
        assert.equal(net.run(h, ['cp', '-r', join(bundle, h.name), folder]).code, 0);
        const install = net.run(h, [
          'env',
          `PATH=${bin()}:/usr/sbin:/usr/bin:/sbin:/bin`,
          join(folder, 'install.sh'),
        ]);
        assert.equal(install.code, 0, `${h.name} install.sh: ${install.out}`);
        for (const unit of ['pgrepl-rs-etcd.service', 'pgrepl-rs-agent.service']) {
          const u = unitOn(h, unit);
          startOn(h, u.user, u.argv, join(base, `${h.name}-${unit}.log`));
        }
      }
      // The operator: the spec, the CA, the etcd client certificate and the passwords, no data.
      const op = join(base, 'operator');
      mkdirSync(join(op, 'agent-tls'), { recursive: true, mode: 0o700 });
      mkdirSync(join(op, 'state', 'tls'), { recursive: true, mode: 0o700 });
      mkdirSync(join(op, 'state', 'secrets'), { recursive: true, mode: 0o700 });
      const n1 = join(bundle, 'n1');
      writeFileSync(
        operator(),
        readFileSync(join(n1, 'pgrepl.yaml'), 'utf8')
          .replaceAll('/etc/pgrepl/rs/agent-tls', join(op, 'agent-tls'))
          .replaceAll('/var/lib/pgrepl/rs', join(op, 'state')),
      );
      copyFileSync(join(n1, 'tls', 'ca.crt'), join(op, 'agent-tls', 'ca.crt'));
      copyFileSync(join(n1, 'tls', 'n1.crt'), join(op, 'agent-tls', 'client.crt'));
      copyFileSync(join(n1, 'tls', 'n1.key'), join(op, 'agent-tls', 'client.key'));
      copyFileSync(join(n1, 'tls', 'ca.crt'), join(op, 'state', 'tls', 'ca.crt'));
      for (const f of ['superuser.password', 'replication.password'])
        copyFileSync(join(n1, 'secrets', f), join(op, 'state', 'secrets', f));
    });

    after(() => {
      net?.destroy();
      for (const d of madeDirs.splice(0).reverse()) rmdirSync(d);
      if (base) rmSync(base, { recursive: true, force: true });
    });

    const logs = () =>
      net.hosts
        .map((h) => {
          const f = join(base, `${h.name}-pgrepl-rs-agent.service.log`);
          const lines = existsSync(f) ? readFileSync(f, 'utf8').split('\n') : [];
          // Its first failure says why, its last lines where it is now.
          return `--- ${h.name}\n${[...lines.filter((l) => / failed: /.test(l)).slice(0, 3), ...lines.slice(-5)].join('\n')}`;
        })
        .join('\n');

    it('forms it: the first node primary, the others streaming from it over TLS', async () => {
      await waitUntil(
        async () => {
          const st = await status().catch(() => null);
          return (
            st?.primary === 'n1' &&
            st.nodes.filter((n) => n.name !== 'n1').every((n) => n.state === 'streaming')
          );
        },
        120_000,
        'n1 primary, n2 and n3 streaming',
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${logs()}`, { cause: err });
      });
      const st = await status();
      assert.equal(st.healthy, true, st.warnings.join('\n'));
      for (const n of st.nodes.filter((x) => x.name !== 'n1'))
        assert.match(n.tls.replication ?? '', /^TLS/, `${n.name} streams over TLS`);
    });

    it('keeps every file on its own host, and the operator reads the history from etcd', async () => {
      const [h1, h2] = net.hosts as [TestHost, TestHost];
      const pgVersion = '/var/lib/pgrepl/rs/data/n1/PG_VERSION';
      assert.equal(net.run(h1, ['test', '-e', pgVersion]).code, 0);
      assert.equal(net.run(h2, ['test', '-e', pgVersion]).code, 1);
      const r = await runCli(['-c', operator(), 'history', '--json'], {
        within: ['ip', 'netns', 'exec', net.operator.netns],
        env: { XDG_CACHE_HOME: join(base, 'cache') },
      });
      const ops = (JSON.parse(r.stdout) as { op: string; node: string }[]).map((e) => `${e.op} ${e.node}`);
      assert.deepEqual(ops.sort(), ['initialize n1', 'rejoin n2', 'rejoin n3']);
    });
  },
);
