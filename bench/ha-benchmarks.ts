import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { REPO, TestCluster, waitUntil } from '../test/helpers/test-cluster.js';
import { WriteProbe } from '../test/helpers/write-probe.js';
import { Writer } from '../test/helpers/writer.js';
import { requestJson } from '../src/dcs/http-json.js';
import { median } from './median.js';

/**
 * `npm run bench:ha` (and the end of `npm run bench`): what issue #12 promises of the agents, on a
 * 1 + 2 cluster in sync mode with a client writing every 10 ms (a multi-host client: whichever
 * node accepts writes). Rewrites the section between the HA markers of BENCHMARKS.md.
 */
const TRIALS = Number(process.env['PGREPL_BENCH_HA_TRIALS'] ?? '10');
const HOG_SECONDS = Number(process.env['PGREPL_BENCH_HOG_SECONDS'] ?? '600');
/** The fast profile under the same load, shorter: it is not the default, and has no target of its own. */
const NODES = ['pg1', 'pg2', 'pg3'];
/** The idle measure: long enough that a clock tick (10 ms of CPU) is under 0.01 % of a core. */
const IDLE_SECONDS = 120;
const IDLE_WARMUP_MS = 20_000;
const BEGIN = '<!-- ha:begin -->';
const END = '<!-- ha:end -->';

const log = (m: string) => process.stderr.write(`bench ha: ${m}\n`);

/** Written into the section as it is: what timelines of single runs, read by hand, showed. */
const WHERE_THE_AGENTS_TIME_GOES = [
  "Where the agents' time goes, from timelines of single runs read by hand on this machine (agent and",
  'server logs, a traced client; 2026-12-04), not from this run:',
  '',
  '- Idle RSS: a bare `node` with one timer is 40 MiB here, 34 MiB of it pages of the Node binary; an',
  '  agent maps ~38.5 MiB of those, so its own (anonymous) memory is what pgrepl can shrink: ~12 MiB now.',
  '  Agents run with `--lite-mode` (−6 MiB); they load neither zod nor the YAML parser (−1 MiB), nor',
  "  the source of what they never run (the bundle is split into chunks: −1.2 MiB), nor prom-client's",
  '  push gateway (−0.8 MiB), pino (−0.5 MiB) or the progress bars.',
  '- Idle CPU depends on what ran before it: the idle part alone (`PGREPL_BENCH_HA_ONLY=idle`) measured',
  '  0.6–0.8 %, at the end of a full run up to 1.1 %; not explained yet. Each second an agent renews',
  '  its lease (on a timer of its own since #31) and, in its loop, reads the cluster from etcd and',
  '  asks its server one or two queries (three on the leader: its slots too, for /metrics); the',
  '  leader renews the fence order.',
  "- Switchover, sync mode, ~300–340 ms for the client: the old primary's fast shutdown until its",
  '  shutdown checkpoint is written 60–140 ms (its backends, the autovacuum and logical replication',
  '  launchers exit, ~20 ms of it on an idle machine; the checkpoint 10–30 ms); its agent sees "shut',
  '  down" in the control file and gives up the key, the target\'s agent, woken by the watch, takes it',
  "  and asks for the promotion: 40–70 ms; PostgreSQL's promotion until it takes writes 70–90 ms",
  '  (30–50 ms of it copying the last 16 MB WAL segment to the new timeline, the rest fsyncs of its',
  '  files); in sync mode the first commit waits for a standby: the other replica, streaming from the',
  '  target since before the shutdown, follows the new timeline on its connection (40–100 ms); then',
  '  the client finds the new primary, 50–100 ms (it tries the hosts in turn, and a SCRAM connection',
  '  alone takes ~20 ms here). During a switchover three servers, three agents, etcd, the command and',
  '  the client share 2 cores.',
  "- Postmaster crash: a backend ends its connection as soon as its postmaster dies, and the agent's",
  '  kept session hears of it: the agent restarts the server at once instead of at its next poll.',
  "- Rejoin from the agent's start, ~0.8 s when no pg_rewind is needed: Node and the bundle ~0.1 s, the",
  '  context (spec cache, `ip route get`) ~0.05 s, etcd lease, API and first observation ~0.1 s, the',
  "  rejoin's checks (observation, the node's WAL end by pg_waldump) ~0.1 s, the slot on the leader",
  "  ~25 ms, configuration and postmaster start ~0.1 s, PostgreSQL's recovery and streaming ~60 ms,",
  '  then ~0.12 s until the agent reports it. Trials of ~2 s needed pg_rewind: the dead primary had WAL',
  '  its replicas never got. `up --ha` adds ~0.25 s before it spawns the agent.',
];
/** The load average as `uptime` prints it: 1, 5 and 15 minutes. */
const uptimeNow = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');

const fmt = (xs: number[]) =>
  `${Math.round(median(xs))} ms | ${Math.round(Math.max(...xs))} ms | ${xs.map(Math.round).join(', ')}`;

interface AgentStatus {
  leader: { node: string; ready: boolean } | null;
  server: { kind: string; streaming?: boolean } | null;
}

class HaBench {
  private constructor(readonly c: TestCluster) {}

  static async start(
    profile: 'default' | 'fast',
    mode: 'sync' | 'async' = 'sync',
    extraSpec = '',
    extraHa = '',
  ): Promise<HaBench> {
    const c = await TestCluster.create(
      NODES,
      `${extraSpec}replication:\n  mode: ${mode}\nha:\n  profile: ${profile}\n${extraHa}`,
    );
    const up = await c.cli(['up', '--ha']);
    if (up.code !== 0) throw new Error(`up --ha failed: ${up.stderr}`);
    const b = new HaBench(c);
    await c.sql(await b.settled(), 'CREATE TABLE writes (id bigint PRIMARY KEY)');
    return b;
  }

  /** The cluster's CA when it runs with `tls: auto`: the agents' API and the servers check against it. */
  private ca(): Buffer | undefined {
    const file = join(this.c.base, 'state', 'tls', 'ca.crt');
    return existsSync(file) ? readFileSync(file) : undefined;
  }

  agentStatus = async (n: string): Promise<AgentStatus | null> => {
    const ca = this.ca();
    try {
      const r = await requestJson(
        `${ca ? 'https' : 'http'}://127.0.0.1:${this.c.port(n) + 1000}/status`,
        null,
        AbortSignal.timeout(1000),
        {},
        ca && { ca },
      );
      return r.body as AgentStatus;
    } catch {
      return null;
    }
  };

  /** Each node's address for a client, over TLS checked against the CA when the cluster has TLS. */
  targets(): { name: string; host: string; port: number; ssl?: { ca: string } }[] {
    const ca = this.ca();
    return NODES.map((name) => ({
      name,
      host: '127.0.0.1',
      port: this.c.port(name),
      ...(ca ? { ssl: { ca: ca.toString('utf8') } } : {}),
    }));
  }

  pid = (file: string) => (JSON.parse(readFileSync(file, 'utf8')) as { pid: number }).pid;
  agentDir = (n: string) => join(this.c.base, 'state', 'ha', 'agents', n);

  /** The leader once every agent agrees and every other node streams again. */
  async settled(): Promise<string> {
    let leader = '';
    await waitUntil(
      async () => {
        const all = await Promise.all(NODES.map(this.agentStatus));
        const l = all[0]?.leader;
        if (!l?.ready || all.some((s) => s?.leader?.node !== l.node || !s.leader.ready)) return false;
        leader = l.node;
        return all.every((s, i) =>
          NODES[i] === l.node ? s?.server?.kind === 'primary' : s?.server?.streaming === true,
        );
      },
      120_000,
      'the cluster to settle',
    );
    return leader;
  }

  /** Runs `fault` under a writer; returns ms from the fault to the first write acknowledged after it, and losses. */
  async underWriter(
    fault: (leader: string) => Promise<void>,
    recover: () => Promise<void> = async () => undefined,
  ): Promise<{ ms: number; lost: number; gapMs: number }> {
    const leader = await this.settled();
    await this.c.sql(leader, 'TRUNCATE writes');
    const nodes = this.targets().map(({ name: _name, ...n }) => n);
    const w = new Writer(nodes, this.c.superuserPassword(), 10, 2000);
    w.start();
    await waitUntil(() => w.acked.length > 20, 20_000, 'writes');
    // A write in flight when the fault hits may still be acknowledged by the old primary: only
    // ids sent after the fault count.
    const firstNew = w.nextId + 1;
    const at = Date.now();
    await fault(leader);
    // A fault that lasts (an etcd outage) may let writes go on for a while: the longest gap is
    // known only once writes sent after the fault ended are acknowledged too.
    const afterFault = w.nextId;
    const ackTimes: number[] = [];
    await waitUntil(
      () => {
        const fresh = w.acked.filter((id) => id >= firstNew).length;
        if (fresh > 0 && ackTimes.length === 0) ackTimes.push(Date.now());
        return fresh > 20 && w.acked.some((id) => id >= afterFault + 20);
      },
      60_000,
      'writes after the fault',
    );
    await w.stop();
    await recover();
    const now = await this.settled();
    const have = new Set(
      (await this.c.sql<{ id: string }>(now, 'SELECT id FROM writes')).map((r) => Number(r.id)),
    );
    return {
      ms: (ackTimes[0] ?? Date.now()) - at,
      lost: w.acked.filter((id) => !have.has(id)).length,
      gapMs: w.longestGapMs,
    };
  }

  async upHa(): Promise<void> {
    const up = await this.c.cli(['up', '--ha']);
    if (up.code !== 0) throw new Error(`up --ha failed: ${up.stderr}`);
  }

  async cleanup(): Promise<void> {
    await this.c.cleanup();
  }
}

/** Node death: postmaster (its whole process group), agent and fence watchdog killed at once. */
async function timeNodeDeaths(
  profile: 'default' | 'fast',
  extraSpec = '',
): Promise<{ ms: number[]; lost: number; rejoinMs: number[]; agentRejoinMs: number[] }> {
  const b = await HaBench.start(profile, 'sync', extraSpec);
  const ms: number[] = [];
  const rejoinMs: number[] = [];
  const agentRejoinMs: number[] = [];
  let lost = 0;
  try {
    for (let i = 0; i < TRIALS; i++) {
      let victim = '';
      const r = await b.underWriter(
        async (leader) => {
          victim = leader;
          const pm = b.c.postmasterPid(leader) as number;
          process.kill(b.pid(join(b.agentDir(leader), 'agent.pid')), 'SIGKILL');
          process.kill(b.pid(join(b.agentDir(leader), 'fence-watchdog.pid')), 'SIGKILL');
          process.kill(-pm, 'SIGKILL');
        },
        async () => {
          // The old primary's agent is started again: until its node streams.
          const began = Date.now();
          await b.upHa();
          await waitUntil(
            async () => (await b.agentStatus(victim))?.server?.streaming === true,
            60_000,
            `${victim} to stream`,
          );
          const streaming = Date.now();
          rejoinMs.push(streaming - began);
          // The agent's PID file is written the moment `up --ha` has spawned it.
          agentRejoinMs.push(streaming - statSync(join(b.agentDir(victim), 'agent.pid')).mtimeMs);
        },
      );
      ms.push(r.ms);
      lost += r.lost;
      log(
        `${profile} node death ${i + 1}: first write ${r.ms} ms, lost ${r.lost}; rejoin ${rejoinMs.at(-1)} ms (${Math.round(agentRejoinMs.at(-1) ?? NaN)} ms from the agent's start)`,
      );
    }
  } finally {
    await b.cleanup();
  }
  return { ms, lost, rejoinMs, agentRejoinMs };
}

async function timePostmasterCrashes(): Promise<{ ms: number[]; lost: number; inPlace: number }> {
  const b = await HaBench.start('default');
  const ms: number[] = [];
  let lost = 0;
  let inPlace = 0;
  try {
    for (let i = 0; i < TRIALS; i++) {
      let victim = '';
      const r = await b.underWriter(async (leader) => {
        victim = leader;
        process.kill(-(b.c.postmasterPid(leader) as number), 'SIGKILL');
      });
      if ((await b.settled()) === victim) inPlace++;
      ms.push(r.ms);
      lost += r.lost;
      log(`postmaster crash ${i + 1}: first write ${r.ms} ms, lost ${r.lost}`);
    }
  } finally {
    await b.cleanup();
  }
  return { ms, lost, inPlace };
}

async function timeSwitchovers(
  mode: 'sync' | 'async' = 'sync',
  extraSpec = '',
): Promise<{ gapMs: number[]; lost: number }> {
  const b = await HaBench.start('default', mode, extraSpec);
  const gapMs: number[] = [];
  let lost = 0;
  try {
    for (let i = 0; i < TRIALS; i++) {
      const r = await b.underWriter(async (leader) => {
        const to = NODES.find((n) => n !== leader) as string;
        const sw = await b.c.cli(['switchover', '--to', to]);
        if (sw.code !== 0) throw new Error(`switchover failed: ${sw.stderr}`);
      });
      gapMs.push(r.gapMs);
      lost += r.lost;
      log(`switchover ${i + 1}: the writer's longest gap ${r.gapMs} ms, lost ${r.lost}`);
    }
  } finally {
    await b.cleanup();
  }
  return { gapMs, lost };
}

/**
 * The switchover's gap as the servers have it, without a client's search for the new primary: a
 * session kept open on every node writes every 5 ms (the one on the target, opened while it was a
 * standby, writes the moment it is promoted), from the old primary's last acknowledged write to
 * the new one's first. Sync mode, no other client.
 */
async function timeServerSideSwitchovers(): Promise<{ gapMs: number[] }> {
  const b = await HaBench.start('default');
  const gapMs: number[] = [];
  try {
    for (let i = 0; i < TRIALS; i++) {
      const leader = await b.settled();
      await b.c.sql(leader, 'CREATE TABLE IF NOT EXISTS probe (node text)');
      const to = NODES.find((n) => n !== leader) as string;
      const probe = new WriteProbe(b.targets(), b.c.superuserPassword(), 5);
      probe.start();
      await waitUntil(() => probe.acks.some((a) => a.node === leader), 10_000, 'probe writes');
      const sw = await b.c.cli(['switchover', '--to', to]);
      if (sw.code !== 0) throw new Error(`switchover failed: ${sw.stderr}`);
      await waitUntil(() => probe.acks.some((a) => a.node === to), 10_000, 'probe writes on the new primary');
      await probe.stop();
      const lastOld = Math.max(...probe.acks.filter((a) => a.node === leader).map((a) => a.ackAt));
      const firstNew = Math.min(...probe.acks.filter((a) => a.node === to).map((a) => a.ackAt));
      gapMs.push(firstNew - lastOld);
      log(`server-side switchover ${i + 1}: ${firstNew - lastOld} ms between the two primaries' writes`);
    }
  } finally {
    await b.cleanup();
  }
  return { gapMs };
}

/**
 * RSS (and of it, what is the agent's own: anonymous memory, and PSS, which shares the Node binary's
 * pages among the processes that map them) and CPU of each idle agent over `seconds`, from /proc,
 * with /metrics scraped every 15 s as a Prometheus server would.
 */
async function idleAgents(seconds: number): Promise<{
  rssMiB: number[];
  anonMiB: number[];
  pssMiB: number[];
  cpuPct: number[];
  watchdogRssMiB: number[];
}> {
  const b = await HaBench.start('default');
  try {
    await b.settled();
    // Idle is the steady state: not the first seconds, while the agents still settle their records.
    await new Promise((r) => setTimeout(r, IDLE_WARMUP_MS));
    const pids = NODES.map((n) => b.pid(join(b.agentDir(n), 'agent.pid')));
    const dogs = NODES.map((n) => b.pid(join(b.agentDir(n), 'fence-watchdog.pid')));
    const ticks = (pid: number) => {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // utime and stime, fields 14 and 15.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(f[11]) + Number(f[12]);
    };
    const kib = (file: string, field: string) =>
      Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(file, 'utf8'))?.[1]) / 1024;
    const rss = (pid: number) => kib(`/proc/${pid}/status`, 'VmRSS');
    const t0 = pids.map(ticks);
    const scrape = () =>
      Promise.all(
        NODES.map((n) =>
          fetch(`http://127.0.0.1:${b.c.port(n) + 1000}/metrics`).then(
            (r) => r.text(),
            () => '',
          ),
        ),
      );
    for (let left = seconds; left > 0; left -= 15) {
      await scrape();
      await new Promise((r) => setTimeout(r, Math.min(15, left) * 1000));
    }
    const clk = 100; // USER_HZ
    return {
      rssMiB: pids.map(rss),
      anonMiB: pids.map((p) => kib(`/proc/${p}/status`, 'RssAnon')),
      pssMiB: pids.map((p) => kib(`/proc/${p}/smaps_rollup`, 'Pss')),
      cpuPct: pids.map((p, i) => ((ticks(p) - (t0[i] as number)) / clk / seconds) * 100),
      watchdogRssMiB: dogs.map(rss),
    };
  } finally {
    await b.cleanup();
  }
}

/** pgbench against the leader plus a CPU hog on every core; counts changes of leader. */
async function falseFailovers(
  seconds: number,
  profile: 'default' | 'fast' = 'default',
): Promise<{ leaderChanges: number; transactions: string }> {
  const b = await HaBench.start(profile);
  const hogs: ReturnType<typeof spawn>[] = [];
  try {
    const leader = await b.settled();
    const bin = JSON.parse((await b.c.cli(['status', '--json'])).stdout).postgres.binDir as string;
    const env = { ...process.env, PGPASSWORD: b.c.superuserPassword() };
    const conn = ['-h', '127.0.0.1', '-p', String(b.c.port(leader)), '-U', 'postgres', 'postgres'];
    const init = spawn(join(bin, 'pgbench'), ['-i', '-s', '10', ...conn], { env, stdio: 'ignore' });
    await new Promise((r) => init.once('exit', r));
    for (let i = 0; i < cpus().length; i++)
      hogs.push(spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
    const bench = spawn(join(bin, 'pgbench'), ['-c', '4', '-T', String(seconds), ...conn], {
      env,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    bench.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    let changes = 0;
    let current = leader;
    const ended = new Promise((r) => bench.once('exit', r));
    let done = false;
    void ended.then(() => (done = true));
    while (!done) {
      const s = await b.agentStatus(NODES.find((n) => n !== current) as string);
      const now = s?.leader?.node;
      if (now && now !== current) {
        changes++;
        current = now;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return { leaderChanges: changes, transactions: /tps = ([\d.]+)/.exec(out)?.[1] ?? '?' };
  } finally {
    for (const h of hogs) if (h.pid) process.kill(h.pid, 'SIGKILL');
    await b.cleanup();
  }
}

/**
 * An etcd outage of ETCD_OUTAGE_MS (etcd SIGSTOPped: every request to it hangs), default profile,
 * every node up: the writer's longest gap, with failsafe on (the default) or off.
 */
async function etcdOutages(failsafe: boolean): Promise<{ gapMs: number[]; lost: number }> {
  const b = await HaBench.start('default', 'sync', '', `  failsafe: ${failsafe}\n`);
  const gapMs: number[] = [];
  let lost = 0;
  try {
    const etcdPid = () => b.pid(join(b.c.base, 'state', 'ha', 'etcd.pid'));
    for (let i = 0; i < OUTAGE_TRIALS; i++) {
      const r = await b.underWriter(async () => {
        process.kill(etcdPid(), 'SIGSTOP');
        await new Promise((res) => setTimeout(res, ETCD_OUTAGE_MS));
        process.kill(etcdPid(), 'SIGCONT');
      });
      gapMs.push(r.gapMs);
      lost += r.lost;
    }
  } finally {
    await b.cleanup();
  }
  return { gapMs, lost };
}

const ETCD_OUTAGE_MS = 6000;
const OUTAGE_TRIALS = 3;

/** `PGREPL_BENCH_HA_ONLY=switchover,death-fast,…`: those measures alone, printed; BENCHMARKS.md is left as it is. */
const PARTS = {
  'death-default': () => timeNodeDeaths('default'),
  'death-fast': () => timeNodeDeaths('fast'),
  crash: () => timePostmasterCrashes(),
  switchover: () => timeSwitchovers(),
  // As the manual command's row of BENCHMARKS.md measures it: no standby must acknowledge commits.
  'switchover-async': () => timeSwitchovers('async'),
  'switchover-server': () => timeServerSideSwitchovers(),
  'switchover-1mb': () => timeSwitchovers('sync', 'postgres:\n  walSegmentSize: 1\n'),
  // tls: auto on loopback: what TLS (agents' API, replication, every client) adds to the same measures.
  'death-default-tls': () => timeNodeDeaths('default', 'tls: auto\n'),
  'death-fast-tls': () => timeNodeDeaths('fast', 'tls: auto\n'),
  'switchover-tls': () => timeSwitchovers('sync', 'tls: auto\n'),
  idle: () => idleAgents(IDLE_SECONDS),
  hog: () => falseFailovers(HOG_SECONDS),
  'hog-fast': () => falseFailovers(HOG_SECONDS, 'fast'),
  'etcd-outage': () => etcdOutages(true),
  'etcd-outage-no-failsafe': () => etcdOutages(false),
} as const;

export async function runHaBenchmarks(): Promise<void> {
  const only = process.env['PGREPL_BENCH_HA_ONLY'];
  if (only) {
    for (const part of only.split(',')) {
      const run = PARTS[part as keyof typeof PARTS];
      if (!run)
        throw new Error(`PGREPL_BENCH_HA_ONLY: no part "${part}"; parts: ${Object.keys(PARTS).join(', ')}`);
      log(`${part}: ${JSON.stringify(await run())}`);
    }
    return;
  }
  const started = new Date();
  const loadBefore = uptimeNow();
  const deathDefault = await PARTS['death-default']();
  const deathFast = await PARTS['death-fast']();
  const crash = await PARTS.crash();
  const sw = await PARTS.switchover();
  const swAsync = await PARTS['switchover-async']();
  const swServer = await PARTS['switchover-server']();
  const sw1mb = await PARTS['switchover-1mb']();
  const idle = await PARTS.idle();
  const outage = await PARTS['etcd-outage']();
  const outageOff = await PARTS['etcd-outage-no-failsafe']();
  const hog = await PARTS.hog();
  const hogFast = await PARTS['hog-fast']();
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}, Node ${process.version}`;
  const r = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(', ');
  const section = [
    BEGIN,
    '## Automatic failover through the agents (`npm run bench:ha`)',
    '',
    `- date: ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC; machine: ${machine}; etcd 3.4 (single member, loopback)`,
    `- 1 primary + 2 replicas in sync mode (FIRST 1); a client writes every 10 ms to whichever node accepts writes; ${TRIALS} trials each`,
    '',
    '| what | median | max | trials | target | lost | ANCHORS (Patroni / pg_auto_failover / repmgr) |',
    '|---|---|---|---|---|---|---|',
    `| node death (postmaster group, agent and watchdog SIGKILLed) → first accepted write, default profile (ttl 4 s) | ${fmt(deathDefault.ms)} | ≤ 5 s | ${deathDefault.lost} | 24–28 s / 52.5 s / 51.8 s |`,
    `| same, fast profile (ttl 1 s) | ${fmt(deathFast.ms)} | ≤ 2 s | ${deathFast.lost} | 9.7 s tuned / 11.6 s / 2.75 s (async, lost a row) |`,
    `| postmaster crash only (agent alive) → first write; restarted in place ${crash.inPlace} of ${TRIALS} | ${fmt(crash.ms)} | ≤ 1.5 s | ${crash.lost} | |`,
    `| switchover through the agents: the client's longest gap | ${fmt(sw.gapMs)} | ≤ 0.25 s | ${sw.lost} | 1.5 s / 2.7 s / 1.5 s |`,
    `| same, async mode (as the manual command's row above is measured) | ${fmt(swAsync.gapMs)} | | ${swAsync.lost} | |`,
    `| same, sync, with \`postgres.walSegmentSize: 1\` (1 MB WAL segments: a promotion copies less) | ${fmt(sw1mb.gapMs)} | | ${sw1mb.lost} | |`,
    `| same, sync, as the servers have it: a session kept on every node writes every 5 ms, no client searching (old primary's last write → new primary's first) | ${fmt(swServer.gapMs)} | | | |`,
    `| killed old primary: its agent started again (\`pgrepl up --ha\`) → streaming (default profile) | ${fmt(deathDefault.rejoinMs)} | ≤ 1 s | | 13.5 s / 1.05 s / 1.6 s |`,
    `| same, from the agent process's start (without what \`up --ha\` does before it spawns the agent) | ${fmt(deathDefault.agentRejoinMs)} | ≤ 1 s | | |`,
    `| etcd down ${ETCD_OUTAGE_MS / 1000} s (SIGSTOP), every node up, default profile: the client's longest gap, failsafe on (the default) | ${fmt(outage.gapMs)} | | ${outage.lost} | Patroni: read-only until etcd is back (failsafe_mode off by default) |`,
    `| same, failsafe off | ${fmt(outageOff.gapMs)} | | ${outageOff.lost} | |`,
    '',
    `Idle agents over ${IDLE_SECONDS} s (after ${IDLE_WARMUP_MS / 1000} s settling), /metrics scraped every 15 s: RSS ${r(idle.rssMiB)} MiB, CPU ${r(idle.cpuPct)} % of a core (target ≤ 50 MiB, ≤ 1 %). Of the RSS, ${r(idle.anonMiB)} MiB are each agent's own (anonymous) memory; the rest are pages of the Node binary, shared by every Node process (PSS ${r(idle.pssMiB)} MiB). Each agent's fence watchdog, a separate small process: RSS ${r(idle.watchdogRssMiB)} MiB.`,
    '',
    ...WHERE_THE_AGENTS_TIME_GOES,
    '',
    `False failovers: ${hog.leaderChanges} leader change(s) during ${HOG_SECONDS} s of \`pgbench -c 4\` (${hog.transactions} tps) with a busy loop on each of the ${cpus().length} cores, default profile (target 0). The fast profile under the same load, also ${HOG_SECONDS} s: ${hogFast.leaderChanges} leader change(s) (${hogFast.transactions} tps; target 0).`,
    '',
    `Load average (\`uptime\`) when the run began: ${loadBefore}; when it ended: ${uptimeNow()}.`,
    END,
  ].join('\n');
  const file = join(REPO, 'BENCHMARKS.md');
  const old = readFileSync(file, 'utf8');
  const next = old.includes(BEGIN)
    ? `${old.slice(0, old.indexOf(BEGIN))}${section}${old.slice(old.indexOf(END) + END.length)}`
    : `${old.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, next);
  log('BENCHMARKS.md updated');
}

if (process.argv[1]?.endsWith('ha-benchmarks.js')) await runHaBenchmarks();
