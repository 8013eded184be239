import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';

/**
 * Test hosts on one machine: a network namespace each, joined by veth pairs to a bridge that lives
 * in a namespace of its own, with addresses in a subnet that exists only inside those namespaces
 * (nothing is routed off the machine). Each host also gets a mount namespace with its own tmpfs
 * over `disk`, so no host, and not the machine the test runs on, sees another host's data.
 */
export interface TestHost {
  readonly name: string;
  readonly netns: string;
  readonly address: string;
  /** Holds the host's mount namespace open; every command on the host enters it. */
  readonly keeper: ChildProcess;
}

export interface TestHosts {
  readonly hosts: readonly TestHost[];
  /** A namespace on the same bridge with no disk of its own: where the operator's commands run. */
  readonly operator: { readonly netns: string; readonly address: string };
  /** Runs `argv` on `host`, in its network and mount namespaces, as `user` (default root). */
  run(host: TestHost, argv: readonly string[], o?: { user?: string }): { code: number; out: string };
  /** Stops everything the hosts run and removes the namespaces; safe to call twice, or after a failed start. */
  destroy(): void;
}

/** The subnet of the test hosts: private, and present only inside the namespaces made here. */
const SUBNET = '10.251.0';

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

/** Whether this machine lets the test make namespaces (root with iproute2 and util-linux). */
export function canMakeHosts(): boolean {
  if (process.getuid?.() !== 0) return false;
  return ['ip', 'unshare', 'nsenter'].every((c) => spawnSync('which', [c]).status === 0);
}

/** Whether nftables is here to cut links inside the namespaces (apt-get install nftables). */
export function haveNft(): boolean {
  return spawnSync('which', ['nft']).status === 0;
}

/** Loads nftables `rules` (one ruleset, `nft -f` syntax) in `host`'s namespace; throws when nft refuses them. */
export function applyNft(net: TestHosts, host: TestHost, rules: string): void {
  const applied = net.run(host, ['sh', '-c', `printf '%s\\n' "$1" | nft -f -`, 'sh', rules]);
  if (applied.code !== 0) throw new Error(`nft on ${host.name}: ${applied.out}`);
}

export async function makeTestHosts(names: readonly string[], disk: string): Promise<TestHosts> {
  const tag = `pgr${process.pid % 100000}`;
  const sw = `${tag}-sw`;
  const made: string[] = [];
  const hosts: TestHost[] = [];
  const operator = { netns: `${tag}-op`, address: `${SUBNET}.2` };
  const destroy = () => {
    for (const h of hosts) {
      // Whatever runs in the host's namespace was started by this test (PostgreSQL, the keeper).
      const pids = spawnSync('ip', ['netns', 'pids', h.netns], { encoding: 'utf8' }).stdout;
      for (const pid of pids.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
    for (const ns of made.splice(0).reverse()) spawnSync('ip', ['netns', 'del', ns]);
  };
  const addNs = (ns: string) => {
    spawnSync('ip', ['netns', 'del', ns]); // a namespace of an earlier run killed before its cleanup
    ip('netns', 'add', ns);
    made.push(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  };
  const attach = (ns: string, address: string, port: string) => {
    ip('-n', sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('-n', sw, 'link', 'set', port, 'master', 'br0', 'up');
    ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
  };
  try {
    mkdirSync(disk, { recursive: true, mode: 0o755 });
    addNs(sw);
    ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', sw, 'link', 'set', 'br0', 'up');
    addNs(operator.netns);
    attach(operator.netns, operator.address, 'op');
    for (const [i, name] of names.entries()) {
      const netns = `${tag}-${name}`;
      addNs(netns);
      const address = `${SUBNET}.${11 + i}`;
      attach(netns, address, `h${i}`);
      const keeper = spawn(
        'ip',
        [
          ...['netns', 'exec', netns, 'unshare', '--mount', '--propagation', 'private', '--'],
          ...[
            'sh',
            '-c',
            'mount -t tmpfs -o size=512m,mode=0755 tmpfs "$1" && echo ready && exec sleep 3600',
          ],
          ...['sh', disk],
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      hosts.push({ name, netns, address, keeper });
      await new Promise<void>((resolve, reject) => {
        keeper.stdout?.once('data', () => resolve());
        keeper.once('exit', (code) => reject(new Error(`host ${name} did not start (exit ${code})`)));
      });
    }
  } catch (err) {
    destroy();
    throw err;
  }
  const run: TestHosts['run'] = (host, argv, o = {}) => {
    const as = o.user ? ['runuser', '-u', o.user, '--'] : [];
    const r = spawnSync('nsenter', ['-t', String(host.keeper.pid), '-m', '-n', '--', ...as, ...argv], {
      encoding: 'utf8',
      cwd: '/',
    });
    return { code: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
  };
  return { hosts, operator, run, destroy };
}
