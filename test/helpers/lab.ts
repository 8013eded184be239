import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyNft, makeTestHosts } from './netns-hosts.js';
import type { TestHost, TestHosts } from './netns-hosts.js';
import { CLI, pgBin, runCli, waitUntil } from './test-cluster.js';
import type { CliResult, StatusJson } from './test-cluster.js';
import type { RunHistory } from './check-history.js';
import { NO_DELAY } from './lab-proxy.js';
import type { ProxyConfig, ProxyDelay, ProxyRoute } from './lab-proxy.js';

/**
 * What the bundle installs into on a host: each lab host sees them through an overlay of its own,
 * its changes on its private disk, so the machine's own /etc and /var/lib stay as they were (and
 * labs running at the same time never share a directory).
 */
const OVERLAID = ['/etc', '/var/lib'];
const CLUSTER = 'lab';
const UNITS = { etcd: `pgrepl-${CLUSTER}-etcd.service`, agent: `pgrepl-${CLUSTER}-agent.service` } as const;
export type Unit = keyof typeof UNITS;

export type LabStatus = Omit<StatusJson, 'nodes'> & {
  nodes: (StatusJson['nodes'][number] & { tls: { replication: string | null } })[];
};

export interface LabOptions {
  readonly names?: readonly string[];
  readonly profile?: 'fast' | 'default';
  readonly mode?: 'async' | 'sync' | 'quorum';
  /**
   * `systemd` (the default): `render systemd`'s bundle, installed by its install.sh, each unit's
   * ExecStart run as its User. `compose`: `render compose --ha`'s, each service run by its
   * entrypoint as a container would run it (which installs the folder itself), without an engine.
   */
  readonly via?: 'systemd' | 'compose';
}

/**
 * The lab: hosts of their own on one machine (a network namespace and private disks each, on a
 * bridge in a subnet that exists only inside the namespaces), with what `pgrepl render systemd`
 * writes installed on each by its own install.sh, unchanged, and each installed unit's ExecStart
 * run as its User (no service manager here), its PID kept. The operator's commands and the
 * clients run in a namespace of their own. destroy() stops everything and removes it all.
 */
export interface Lab {
  readonly base: string;
  readonly net: TestHosts;
  readonly hosts: readonly TestHost[];
  /** The spec as the operator's namespace reads it (the CA, the etcd client certificate, the passwords). */
  readonly operatorSpec: string;
  host(name: string): TestHost;
  /** Starts a unit on its host as the installed unit file says; returns its PID. */
  start(host: TestHost, unit: Unit): number;
  /** The PID of the unit the lab started on that host, while it lives. */
  pid(host: TestHost, unit: Unit): number | null;
  /** The host's postmaster (its postmaster.pid), while it runs. */
  postmasterPid(host: TestHost): number | null;
  /** Runs the CLI in the operator's namespace with the operator's spec. */
  cli(args: readonly string[]): Promise<CliResult>;
  status(): Promise<LabStatus>;
  /** Starts the lab's client (lab-client.ts) in the operator's namespace; stop() returns what it recorded. */
  client(): Promise<{ stop(): Promise<Omit<RunHistory, 'faults'> & { committed: number[] }> }>;
  /**
   * Delays every connection between hosts of which one end is on one of `d.hosts` (the lab's
   * proxies, lab-proxy.ts); NO_DELAY lifts it.
   */
  delay(d: ProxyDelay): void;
  /** Steps the wall clock of `host`'s agent and PostgreSQL to `offsetSeconds` from the true time. */
  setClock(host: TestHost, offsetSeconds: number): void;
  /** The end of each host's agent log, for a failure's message. */
  logs(): string;
  destroy(): void;
}

/** A user's home directory, from the machine's passwd (the hosts share it). */
function homeOf(user: string): string {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  return line?.split(':')[5] ?? '/';
}

const LAB_CLIENT = join(dirname(fileURLToPath(import.meta.url)), 'lab-client.js');
const LAB_PROXY = join(dirname(fileURLToPath(import.meta.url)), 'lab-proxy.js');

/** The ports hosts open connections to each other on: PostgreSQL, the agents' API, etcd client and peer. */
const HOST_PORTS = [5432, 6432, 2379, 2380] as const;
/** The lab's proxies listen from this port on (127.0.0.1 of each host). */
const PROXY_PORTS_FROM = 20000;
/** Whose connections nftables lets pass unproxied: the proxies' own (they run as this user). */
const PROXY_USER = 'nobody';

/** libfaketime (apt-get install faketime): how the lab moves one host's wall clock. */
const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
export const haveFaketime = (): boolean => existsSync(FAKETIME_LIB);
/** On each host's own disk: the offset of its wall clock, as libfaketime reads it ("+0", "+3600"). */
const CLOCK_FILE = '/var/lib/pgrepl-lab-clock';
/**
 * The environment that puts a process on its host's clock file: wall-clock reads (gettimeofday,
 * clock_gettime of CLOCK_REALTIME) are offset; the monotonic clocks are left alone, as an NTP step
 * or an operator's `date -s` leaves them. Read again at most once a second.
 */
const FAKETIME_ENV = [
  `LD_PRELOAD=${FAKETIME_LIB}`,
  `FAKETIME_TIMESTAMP_FILE=${CLOCK_FILE}`,
  'FAKETIME_DONT_FAKE_MONOTONIC=1',
  'FAKETIME_CACHE_DURATION=1',
];

/**
 * PGREPL_LAB_KEEP=DIR: before a lab goes, every host's logs (agent, etcd, fence watchdog,
 * PostgreSQL) are copied to DIR/<lab>/, to read after a failing run; the hosts' disks go with them.
 */
function keepLogs(net: TestHosts, base: string): void {
  const keep = process.env['PGREPL_LAB_KEEP'];
  if (!keep) return;
  const to = join(keep, basename(base));
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(base)) if (f.endsWith('.log')) copyFileSync(join(base, f), join(to, f));
  for (const h of net.hosts) {
    mkdirSync(join(to, h.name), { recursive: true });
    net.run(h, [
      'sh',
      '-c',
      'cd "$1" && find . -name "*.log" -exec cp --parents {} "$2" \\;',
      'sh',
      `/var/lib/pgrepl/${CLUSTER}`,
      join(to, h.name),
    ]);
  }
}

export async function makeLab(o: LabOptions = {}): Promise<Lab> {
  const names = o.names ?? ['n1', 'n2', 'n3'];
  const base = mkdtempSync(join(tmpdir(), 'pgrepl-lab-'));
  chmodSync(base, 0o755);
  const children = new Map<string, ChildProcess>();
  let net: TestHosts | undefined;
  const bin = join(base, 'bin');
  const path = `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`;
  const env = { XDG_CACHE_HOME: join(base, 'cache') };
  const destroy = () => {
    if (net) keepLogs(net, base);
    net?.destroy();
    rmSync(base, { recursive: true, force: true });
  };
  try {
    const disk = join(base, 'disk');
    net = await makeTestHosts(names, disk);
    const hosts = net.hosts;
    // What a host has on its PATH: pgrepl, and a systemctl that starts nothing (the lab does).
    mkdirSync(bin, { mode: 0o755 });
    writeFileSync(join(bin, 'pgrepl'), `#!/bin/sh\nexec ${process.execPath} ${CLI} "$@"\n`, { mode: 0o755 });
    writeFileSync(
      join(bin, 'systemctl'),
      '#!/bin/sh\ncase "$1" in is-enabled|is-active) exit 1;; esac\nexit 0\n',
      {
        mode: 0o755,
      },
    );
    // PostgreSQL's programs, each started on its host's clock file (pg_ctl and initdb pass their
    // environment on to the server they start).
    const pgbin = join(base, 'pgbin');
    mkdirSync(pgbin, { mode: 0o755 });
    const clocked = haveFaketime() ? `env ${FAKETIME_ENV.join(' ')} ` : '';
    for (const prog of readdirSync(pgBin()))
      writeFileSync(join(pgbin, prog), `#!/bin/sh\nexec ${clocked}${join(pgBin(), prog)} "$@"\n`, {
        mode: 0o755,
      });
    const spec = join(base, 'pgrepl.yaml');
    writeFileSync(
      spec,
      [
        `cluster: ${CLUSTER}`,
        `replication: { mode: ${o.mode ?? 'async'} }`,
        'ha:',
        `  profile: ${o.profile ?? 'fast'}`,
        // The operator's namespace reaches every node as the superuser.
        `access: [{ cidr: ${net.operator.address}/32, user: postgres, database: all }]`,
        // A soak puts a year of failovers into minutes: each leaves WAL that the next checkpoint or
        // restartpoint removes, minutes apart by default, on 512 MB disks.
        'settings: { checkpoint_timeout: 30s }',
        `postgres: { binDir: ${pgbin} }`,
        'nodes:',
        ...hosts.map((h) => `  - { name: ${h.name}, host: ${h.address}, port: 5432 }`),
        '',
      ].join('\n'),
    );
    const bundle = join(base, 'bundle');
    const compose = o.via === 'compose';
    const r = await runCli(
      [
        '-c',
        spec,
        'render',
        ...(compose ? ['compose', '--ha'] : ['systemd']),
        '--out',
        bundle,
        '--with-secrets',
      ],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    const run = net.run;
    const unitOn = (host: TestHost, unit: Unit) => {
      const text = run(host, ['cat', `/etc/systemd/system/${UNITS[unit]}`]).out;
      const field = (k: string) => text.match(new RegExp(`^${k}=(.*)$`, 'm'))?.[1] ?? '';
      return { user: field('User'), argv: field('ExecStart').split(' ') };
    };
    const start = (host: TestHost, unit: Unit): number => {
      const fd = openSync(join(base, `${host.name}-${unit}.log`), 'a');
      // nsenter, setpriv and the entrypoint exec what they run: the PID is the unit's own process.
      const argv = (): string[] => {
        if (compose)
          return ['env', '-i', `PATH=${path}`, join(disk, 'bundle', 'compose-entrypoint.sh'), unit];
        const u = unitOn(host, unit);
        return [
          ...['setpriv', `--reuid=${u.user}`, `--regid=${u.user}`, '--init-groups', '--'],
          // The environment systemd gives a unit's User: its home (libpq looks there for certificates).
          ...['env', '-i', `PATH=${path}`, `HOME=${homeOf(u.user)}`, `USER=${u.user}`, `LOGNAME=${u.user}`],
          ...[`XDG_CACHE_HOME=/var/lib/pgrepl/${CLUSTER}/cache`],
          ...(unit === 'agent' && clocked ? FAKETIME_ENV : []),
          // Each renewal and fence order in the agent's log: what a late fence is judged by.
          ...(unit === 'agent' ? ['PGREPL_AGENT_TRACE=1'] : []),
          ...u.argv,
        ];
      };
      const child = spawn('nsenter', ['-t', String(host.keeper.pid), '-m', '-n', '--', ...argv()], {
        stdio: ['ignore', fd, fd],
        detached: true,
        cwd: '/',
      });
      child.unref();
      closeSync(fd);
      children.set(`${host.name}/${unit}`, child);
      return child.pid as number;
    };
    for (const h of hosts) {
      const folder = join(disk, 'bundle');
      const prepared = run(h, [
        'sh',
        '-c',
        [
          'disk=$1; shift',
          'for d in "$@"; do',
          '  o="$disk/overlay$(echo "$d" | tr / _)"; mkdir -p "$o/up" "$o/work"',
          '  mount -t overlay overlay -o "lowerdir=$d,upperdir=$o/up,workdir=$o/work" "$d" || exit 1',
          'done',
          'mkdir -p /etc/systemd/system',
          `echo +0 > ${CLOCK_FILE}`,
        ].join('\n'),
        'sh',
        disk,
        ...OVERLAID,
      ]);
      assert.equal(prepared.code, 0, prepared.out);
      assert.equal(run(h, ['cp', '-r', join(bundle, h.name), folder]).code, 0);
      if (!compose) {
        const install = run(h, ['env', `PATH=${path}`, join(folder, 'install.sh')]);
        assert.equal(install.code, 0, `${h.name} install.sh: ${install.out}`);
      }
    }
    const proxies = await startProxies(net, base);
    for (const h of hosts) {
      if (existsSync(join(bundle, h.name, 'etcd.conf.yml'))) {
        const etcd = start(h, 'etcd');
        // Compose starts etcd first (depends_on); its entrypoint's install.sh writes the files the
        // agent's writes too. In containers each writes its own filesystem; here both share the
        // host's, so the agent starts once etcd's entrypoint has exec'd etcd, its install done.
        if (compose) await untilExecs(etcd, 'etcd', 30_000);
      }
      start(h, 'agent');
    }
    // The operator: the spec, the CA, the etcd client certificate and the passwords; no data.
    const op = join(base, 'operator');
    const first = join(bundle, hosts[0]?.name ?? '');
    mkdirSync(join(op, 'agent-tls'), { recursive: true, mode: 0o700 });
    mkdirSync(join(op, 'state', 'tls'), { recursive: true, mode: 0o700 });
    mkdirSync(join(op, 'state', 'secrets'), { recursive: true, mode: 0o700 });
    const operatorSpec = join(op, 'pgrepl.yaml');
    writeFileSync(
      operatorSpec,
      readFileSync(join(first, 'pgrepl.yaml'), 'utf8')
        .replaceAll(`/etc/pgrepl/${CLUSTER}/agent-tls`, join(op, 'agent-tls'))
        .replaceAll(`/var/lib/pgrepl/${CLUSTER}`, join(op, 'state')),
    );
    const firstName = hosts[0]?.name ?? '';
    copyFileSync(join(first, 'tls', 'ca.crt'), join(op, 'agent-tls', 'ca.crt'));
    copyFileSync(join(first, 'tls', `${firstName}.crt`), join(op, 'agent-tls', 'client.crt'));
    copyFileSync(join(first, 'tls', `${firstName}.key`), join(op, 'agent-tls', 'client.key'));
    copyFileSync(join(first, 'tls', 'ca.crt'), join(op, 'state', 'tls', 'ca.crt'));
    for (const f of ['superuser.password', 'replication.password'])
      copyFileSync(join(first, 'secrets', f), join(op, 'state', 'secrets', f));
    mkdirSync(join(op, 'state', 'ha'), { mode: 0o700 });
    copyFileSync(join(first, 'secrets', 'api-token'), join(op, 'state', 'ha', 'api-token'));
    const within = ['ip', 'netns', 'exec', net.operator.netns];
    const cli = (args: readonly string[]) => runCli(['-c', operatorSpec, ...args], { within, env });
    const lab: Lab = {
      base,
      net,
      hosts,
      operatorSpec,
      host: (name) => {
        const h = hosts.find((x) => x.name === name);
        if (!h) throw new Error(`no lab host ${name}`);
        return h;
      },
      start,
      pid: (host, unit) => {
        const c = children.get(`${host.name}/${unit}`);
        return c && c.exitCode === null && c.signalCode === null ? (c.pid as number) : null;
      },
      postmasterPid: (host) => {
        const r = run(host, ['head', '-1', `/var/lib/pgrepl/${CLUSTER}/data/${host.name}/postmaster.pid`]);
        return r.code === 0 ? Number(r.out.trim()) : null;
      },
      cli,
      delay: (d) => {
        writeFileSync(join(base, 'delay.json'), JSON.stringify(d));
        for (const p of proxies) p.kill('SIGHUP');
      },
      setClock: (host, offsetSeconds) => {
        if (!clocked) throw new Error('no libfaketime here (apt-get install faketime)');
        const offset = `${offsetSeconds >= 0 ? '+' : ''}${offsetSeconds}`;
        assert.equal(run(host, ['sh', '-c', `echo ${offset} > ${CLOCK_FILE}`]).code, 0);
      },
      status: async () => JSON.parse((await cli(['status', '--json'])).stdout) as LabStatus,
      client: async () => {
        const config = join(base, `client-${Date.now()}.json`);
        const out = `${config}.out`;
        writeFileSync(
          config,
          JSON.stringify({
            nodes: hosts.map((h) => ({ name: h.name, host: h.address, port: 5432 })),
            caFile: join(op, 'state', 'tls', 'ca.crt'),
            passwordFile: join(op, 'state', 'secrets', 'superuser.password'),
            out,
          }),
        );
        const child = spawn(within[0] as string, [...within.slice(1), process.execPath, LAB_CLIENT, config], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        await new Promise<void>((resolve, reject) => {
          child.stdout?.once('data', () => resolve());
          child.once('exit', (code) =>
            reject(new Error(`the lab client ended (exit ${code}) before it was ready`)),
          );
        });
        return {
          stop: async () => {
            const ended = new Promise((r) => child.once('exit', r));
            child.kill('SIGTERM');
            await ended;
            return JSON.parse(readFileSync(out, 'utf8')) as Omit<RunHistory, 'faults'> & {
              committed: number[];
            };
          },
        };
      },
      logs: () =>
        hosts
          .map((h) => {
            const f = join(base, `${h.name}-agent.log`);
            const lines = existsSync(f) ? readFileSync(f, 'utf8').split('\n') : [];
            // Its first failures say why, its last lines where it is now.
            return `--- ${h.name}\n${[...lines.filter((l) => / failed: /.test(l)).slice(0, 3), ...lines.slice(-8)].join('\n')}`;
          })
          .join('\n'),
      destroy,
    };
    return lab;
  } catch (err) {
    destroy();
    throw err;
  }
}

/**
 * Starts a proxy (lab-proxy.ts) in every host's namespace, and nftables rules there that send each
 * connection the host opens to another host's HOST_PORTS through it; returns the proxies, which
 * read `delay.json` in `base` on SIGHUP. They run as PROXY_USER, from a copy of the script in
 * `base`, which that user can read.
 */
async function startProxies(net: TestHosts, base: string): Promise<ChildProcess[]> {
  const script = join(base, 'lab-proxy.mjs');
  copyFileSync(LAB_PROXY, script);
  const control = join(base, 'delay.json');
  writeFileSync(control, JSON.stringify(NO_DELAY));
  const proxies: ChildProcess[] = [];
  for (const h of net.hosts) {
    const routes: ProxyRoute[] = net.hosts
      .filter((o) => o !== h)
      .flatMap((o) => HOST_PORTS.map((port) => ({ peer: o.name, host: o.address, port })))
      .map((r, i) => ({ ...r, listen: PROXY_PORTS_FROM + i }));
    const config: ProxyConfig = { self: h.name, routes, control };
    const file = join(base, `proxy-${h.name}.json`);
    writeFileSync(file, JSON.stringify(config));
    const rules = [
      'table ip labproxy {',
      '  chain out {',
      '    type nat hook output priority -100; policy accept;',
      `    meta skuid ${PROXY_USER} return`,
      ...routes.map((r) => `    ip daddr ${r.host} tcp dport ${r.port} redirect to :${r.listen}`),
      '  }',
      '}',
    ].join('\n');
    applyNft(net, h, rules);
    const child = spawn(
      'nsenter',
      [
        ...['-t', String(h.keeper.pid), '-m', '-n', '--'],
        ...['setpriv', `--reuid=${PROXY_USER}`, '--regid=nogroup', '--clear-groups', '--'],
        ...[process.execPath, script, file],
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], cwd: '/' },
    );
    proxies.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout?.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the proxy of ${h.name} ended (exit ${code})`)));
    });
  }
  return proxies;
}

/** Waits until process `pid` runs `command` (its entrypoint exec'd it). */
async function untilExecs(pid: number, command: string, timeoutMs: number): Promise<void> {
  const comm = () => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  };
  await waitUntil(() => comm() === command, timeoutMs, `process ${pid} to run ${command}`);
}
