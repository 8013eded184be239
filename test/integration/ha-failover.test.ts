import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chownSync,
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  CLI,
  REPO,
  TestCluster,
  alive,
  assertNoLeakedServers,
  freePort,
  waitUntil,
} from '../helpers/test-cluster.js';
import { API_OFFSET, haAgents, haveEtcd } from '../helpers/ha-agents.js';
import { failoverBoundMs, HA_PROFILES } from '../../src/cluster-spec/ha-profiles.js';
import { waitPostmasterGone } from '../../src/postgres/instance-control.js';

const haproxy = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => existsSync(p)) ?? null;
const strace = ['/usr/bin/strace', '/bin/strace'].find((p) => existsSync(p)) ?? null;

/** One query through `port` (HAProxy) as the superuser. */
async function sqlVia(port: number, password: string, text: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    database: 'postgres',
    connectionTimeoutMillis: 1000,
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(text)).rows as Record<string, unknown>[];
  } finally {
    void client.end().catch(() => undefined);
  }
}

const NODES = ['pg1', 'pg2', 'pg3'];

/**
 * Automatic failover against real etcd and real PostgreSQL, in sync mode with the fast profile:
 * each fault runs under a writer (whose acknowledged rows must all survive) and a probe that writes
 * to every node directly every 100 ms (no two nodes may acknowledge writes in overlapping runs).
 */
describe(
  'automatic failover by the agents',
  { skip: haveEtcd ? false : 'no etcd binary (apt-get install etcd-server)' },
  () => {
    let c: TestCluster;
    const handStarted: number[] = [];

    const agents = haAgents(() => c, NODES);
    const {
      status: agentStatus,
      waitFor,
      settled,
      agentPid: agentPidOf,
      watchdogPid: watchdogPidOf,
    } = agents;
    const ha = agents.dir;
    const check = async (name: string, path: string) => {
      try {
        return (await fetch(agents.api(name, path), { signal: AbortSignal.timeout(1000) })).status;
      } catch {
        return null;
      }
    };

    const underLoad = (
      fault: (leader: string) => Promise<void>,
      recover: () => Promise<void>,
      writeTo?: { host: string; port: number }[],
    ) => agents.underLoad(fault, recover, writeTo);

    before(async () => {
      // Failsafe off: these tests hold a leader without etcd to its lease (ha-default-profile runs it on).
      c = await TestCluster.create(
        NODES,
        'replication:\n  mode: sync\nha:\n  profile: fast\n  failsafe: false\n',
      );
      const up = await c.cli(['up', '--ha']);
      assert.equal(up.code, 0, up.stderr);
      const leader = await settled();
      await agents.makeTables(leader);
    });

    after(async () => {
      for (const pid of handStarted) if (alive(pid)) process.kill(pid, 'SIGKILL');
      await c?.cleanup();
      assertNoLeakedServers();
    });

    it('serves the load-balancer checks with Patroni’s codes, HEAD too', async () => {
      const leader = await settled();
      const replica = NODES.find((n) => n !== leader) as string;
      assert.equal(await check(leader, '/primary'), 200);
      assert.equal(await check(leader, '/replica'), 503);
      assert.equal(await check(replica, '/primary'), 503);
      assert.equal(await check(replica, '/replica'), 200);
      assert.equal(await check(replica, '/replica?lag=1GB'), 200);
      assert.equal(await check(replica, '/replica?lag=x'), 400);
      assert.equal(await check(replica, '/read-only'), 200);
      assert.equal(await check(replica, '/liveness'), 200);
      // A replica learns which standbys the primary waits for from the leader's member record: one
      // loop of each after the primary's pg_stat_replication says so, which settling does not wait for.
      const syncs = () => Promise.all(NODES.filter((n) => n !== leader).map((n) => check(n, '/sync')));
      await waitFor(
        async () => (await syncs()).sort().join() === '200,503',
        5000,
        'the replicas to learn the sync standby',
      );
      assert.deepEqual((await syncs()).sort(), [200, 503], 'FIRST 1: one synchronous standby, one potential');
      const head = await fetch(`http://127.0.0.1:${c.port(leader) + API_OFFSET}/primary`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      const metrics = await (await fetch(`http://127.0.0.1:${c.port(leader) + API_OFFSET}/metrics`)).text();
      assert.match(metrics, /^pgrepl_primary 1$/m);
      assert.match(metrics, new RegExp(`^pgrepl_leader\\{node="${leader}"\\} 1$`, 'm'));
      for (const reason of ['leader_lost', 'operator'])
        assert.match(metrics, new RegExp(`^pgrepl_failovers_total\\{reason="${reason}"\\} \\d+$`, 'm'));
      assert.match(metrics, /^pgrepl_switchovers_total\{reason="operator"\} \d+$/m);
      for (const n of NODES.filter((x) => x !== leader))
        assert.match(
          metrics,
          new RegExp(`^pgrepl_slot_retained_bytes\\{slot="${n}",active="true"\\} \\d+$`, 'm'),
        );
      const onReplica = await (await fetch(agents.api(replica, '/metrics'))).text();
      assert.match(onReplica, /^pgrepl_replication_lag_seconds [\d.e-]+$/m);
      assert.match(onReplica, /^pgrepl_replication_lag_bytes \d+$/m);
    });

    it('reports the leader, its lease and each agent in status', async () => {
      const leader = await settled();
      const r = await c.cli(['status', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const st = JSON.parse(r.stdout) as {
        ha: { leader: string; leaseSecondsLeft: number; paused: boolean };
        nodes: {
          name: string;
          agent: { pid: number; api: string; decision: string; reason: string } | null;
        }[];
      };
      assert.equal(st.ha.leader, leader);
      // The fast profile's lease is 1 s; etcd says the time left in whole seconds, rounded down.
      assert.ok(
        st.ha.leaseSecondsLeft >= 0 && st.ha.leaseSecondsLeft <= 1,
        `lease ${st.ha.leaseSecondsLeft} s`,
      );
      for (const n of st.nodes) {
        assert.equal(n.agent?.pid, agentPidOf(n.name));
        assert.equal(n.agent?.api, `http://127.0.0.1:${c.port(n.name) + API_OFFSET}`);
        assert.equal(n.agent?.decision, n.name === leader ? 'lead' : 'wait');
      }
      const text = await c.cli(['status']);
      assert.match(text.stdout, new RegExp(`agents: leader ${leader} \\(lease (< 1|1) s`));
    });

    it('refuses a manual promote while a leader holds the key, and points at switchover', async () => {
      const leader = await settled();
      const replica = NODES.find((n) => n !== leader) as string;
      const r = await c.cli(['promote', replica]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /E_PRIMARY_RUNNING/);
      assert.match(r.stderr, new RegExp(`${leader} holds the leader key.*pgrepl switchover`));
      assert.equal(await settled(), leader, 'nothing changed');
    });

    it('takes mutating requests only with the token of the 0600 secret file', async () => {
      const leader = await settled();
      const file = join(c.base, 'state', 'ha', 'api-token');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const token = readFileSync(file, 'utf8').trim();
      const post = (path: string, auth?: string) =>
        fetch(`http://127.0.0.1:${c.port(leader) + API_OFFSET}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
          body: '{}',
        });
      for (const path of ['/restart', '/stop', '/switchover', '/pause']) {
        const none = await post(path);
        assert.equal(none.status, 401, path);
        assert.match(((await none.json()) as { message: string }).message, /Authorization: Bearer/);
        assert.equal((await post(path, `Bearer ${token.slice(0, -1)}x`)).status, 401, path);
      }
      const bad = await fetch(`http://127.0.0.1:${c.port(leader) + API_OFFSET}/stop`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ mode: 'smart' }),
      });
      assert.equal(bad.status, 400);
      const refused = await post('/stop', `Bearer ${token}`);
      assert.equal(refused.status, 409, 'the token is right; the leader refuses to be stopped');
      assert.equal(((await refused.json()) as { code: string }).code, 'E_IS_PRIMARY');
      assert.equal(await settled(), leader, 'nothing changed');
      assert.ok(
        !readFileSync(join(ha(leader), 'agent.log'), 'utf8').includes(token),
        'the token is in no log',
      );
    });

    it('stops a replica through its agent, which leaves it stopped until `start NODE`', async () => {
      const leader = await settled();
      const replica = NODES.find((n) => n !== leader) as string;
      const stop = await c.cli(['stop', replica, '--json']);
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal((JSON.parse(stop.stdout) as { throughAgents: boolean }).throughAgents, true);
      assert.equal(c.postmasterPid(replica), null);
      // Four loops of the fast profile: its agent does not start it again.
      await new Promise((r) => setTimeout(r, 2000));
      assert.equal(c.postmasterPid(replica), null, 'still stopped');
      assert.match((await agentStatus(replica))?.reason ?? '', /stopped by an operator/);
      const start = await c.cli(['start', replica]);
      assert.equal(start.code, 0, start.stderr);
      assert.match(start.stdout, new RegExp(`${replica} runs \\(replica\\), started through its agent`));
      assert.equal(await settled(), leader);
    });

    it('restarts and reloads through the agents: each node by its own, replicas first, the leader in place', async () => {
      const leader = await settled();
      const replica = NODES.find((n) => n !== leader) as string;
      const one = c.postmasterPid(replica);
      const r1 = await c.cli(['restart', replica]);
      assert.equal(r1.code, 0, r1.stderr);
      assert.notEqual(c.postmasterPid(replica), one, 'a new postmaster');
      const before = Object.fromEntries(NODES.map((n) => [n, c.postmasterPid(n)]));
      const all = await c.cli(['restart', '--json']);
      assert.equal(all.code, 0, all.stderr);
      const restarted = (JSON.parse(all.stdout) as { restarted: { node: string }[] }).restarted.map(
        (x) => x.node,
      );
      assert.equal(restarted.at(-1), leader, 'the leader last');
      assert.deepEqual([...restarted].sort(), [...NODES].sort());
      for (const n of NODES) assert.notEqual(c.postmasterPid(n), before[n], `${n} restarted`);
      assert.equal(await settled(), leader, 'the leader kept its key through its restart');
      const reload = await c.cli(['reload']);
      assert.equal(reload.code, 0, reload.stderr);
      assert.match(reload.stdout, /^reloaded /);
      for (const n of NODES) assert.ok(reload.stdout.includes(n), `${n} reloaded`);
    });

    it('promotes through the agents while paused, after the leader’s host died (a manual failover)', async () => {
      let promoted = '';
      const r = await underLoad(
        async (leader) => {
          const paused = await c.cli(['pause']);
          assert.equal(paused.code, 0, paused.stderr);
          const pm = c.postmasterPid(leader) as number;
          for (const pid of [agentPidOf(leader), watchdogPidOf(leader)]) process.kill(pid, 'SIGKILL');
          process.kill(-pm, 'SIGKILL');
          // Paused: the key expires, and no agent fails over.
          await waitFor(
            async () => (await agentStatus(NODES.find((n) => n !== leader) as string))?.leader === null,
            10_000,
            'the dead leader’s key to expire',
          );
          await new Promise((res) => setTimeout(res, 1500));
          for (const n of NODES.filter((x) => x !== leader))
            assert.equal((await agentStatus(n))?.server?.kind, 'replica', `${n} was not promoted by itself`);
          const p = await c.cli(['promote', '--auto', '--json']);
          assert.equal(p.code, 0, p.stderr);
          const out = JSON.parse(p.stdout) as {
            newPrimary: string;
            followers: string[];
            throughAgents: boolean;
          };
          promoted = out.newPrimary;
          assert.notEqual(promoted, leader);
          assert.equal(out.throughAgents, true);
          assert.deepEqual(
            out.followers,
            NODES.filter((n) => n !== leader && n !== promoted),
          );
        },
        async () => {
          const un = await c.cli(['unpause']);
          assert.equal(un.code, 0, un.stderr);
          const up = await c.cli(['up', '--ha']);
          assert.equal(up.code, 0, up.stderr);
        },
      );
      assert.equal(r.leader, promoted);
      const history = JSON.parse((await c.cli(['history', '--json'])).stdout) as {
        op: string;
        reason: string;
      }[];
      assert.match(history.filter((e) => e.op === 'failover').at(-1)?.reason ?? '', /asked by an operator/);
    });

    it('switches over through the agents with no acknowledged commit lost', async () => {
      let to = '';
      const r = await underLoad(
        async (leader) => {
          to = NODES.find((n) => n !== leader) as string;
          const sw = await c.cli(['switchover', '--to', to, '--json']);
          assert.equal(sw.code, 0, sw.stderr);
          const out = JSON.parse(sw.stdout) as {
            newPrimary: string;
            oldPrimary: string;
            throughAgents: boolean;
          };
          assert.deepEqual([out.newPrimary, out.oldPrimary, out.throughAgents], [to, leader, true]);
        },
        async () => undefined,
      );
      assert.equal(r.leader, to);
      const history = JSON.parse((await c.cli(['history', '--json'])).stdout) as {
        op: string;
        node: string;
      }[];
      const switched = history.filter((e) => e.op === 'switchover');
      assert.equal(switched.at(-1)?.node, to, 'the agents record it in etcd, and history reads it');
      assert.ok(
        history.some((e) => e.op === 'rejoin' && e.node === r.before),
        'the old leader’s agent recorded its rejoin there too',
      );
      const third = NODES.find((n) => n !== to && n !== r.before) as string;
      assert.match(
        readFileSync(join(ha(third), 'agent.log'), 'utf8'),
        new RegExp(`switchover to ${to}: streaming from it before ${r.before} stops`),
        'the third node streamed from the target before the old leader stopped, to follow its promotion at once',
      );
      console.log(`# switchover through the agents: the writer's longest gap ${r.longestGapMs} ms`);
    });

    it('keeps no segment of every timeline in pg_wal across failovers of a quiet cluster', async () => {
      // Checkpoints remove WAL segments by number, whatever their timeline: with no writes to move
      // past that number, each promotion used to add a 16 MB segment of it on every node, for good.
      // Each promotion now starts a new segment: one number is on at most the two timelines that meet in it.
      for (let i = 0; i < 4; i++) {
        const leader = await settled();
        const to = NODES[(NODES.indexOf(leader) + 1) % NODES.length] as string;
        const sw = await c.cli(['switchover', '--to', to]);
        assert.equal(sw.code, 0, sw.stderr);
      }
      await settled();
      for (const n of NODES) {
        const perNumber = new Map<string, string[]>();
        for (const f of readdirSync(join(c.dataDir(n), 'pg_wal')).filter((x) => /^[0-9A-F]{24}$/.test(x)))
          perNumber.set(f.slice(8), [...(perNumber.get(f.slice(8)) ?? []), f]);
        const most = [...perNumber.values()].sort((a, b) => b.length - a.length)[0] ?? [];
        assert.ok(
          most.length <= 2,
          `${n} keeps one segment number on ${most.length} timelines: ${most.join(' ')}`,
        );
      }
    });

    it('changes the replication mode through the agents, and back', async () => {
      const leader = await settled();
      const others = NODES.filter((n) => n !== leader).map((n) => `"${n}"`);
      const running = async () =>
        (await c.sql<{ v: string }>(leader, "SELECT current_setting('synchronous_standby_names') AS v"))[0]
          ?.v;
      const quorum = await c.cli(['set-mode', 'quorum', '--count', '2', '--json']);
      assert.equal(quorum.code, 0, quorum.stderr);
      const out = JSON.parse(quorum.stdout) as {
        throughAgents: boolean;
        leader: string;
        synchronousStandbyNames: string;
      };
      assert.deepEqual([out.throughAgents, out.leader], [true, leader]);
      assert.equal(out.synchronousStandbyNames, `ANY 2 (${others.join(', ')})`);
      assert.equal(await running(), out.synchronousStandbyNames, 'the leader runs it');
      await c.sql(leader, 'INSERT INTO writes (id) VALUES (-1)');
      const sync = await c.cli(['set-mode', 'sync']);
      assert.equal(sync.code, 0, sync.stderr);
      assert.equal(await running(), `FIRST 1 (${others.join(', ')})`);
      await c.sql(leader, 'DELETE FROM writes WHERE id = -1');
    });

    it(
      'touches no other node’s directory: every agent and all it runs, traced through a switchover and a restart',
      { skip: strace ? false : 'no strace (apt-get install strace)' },
      async () => {
        const leader = await settled();
        const traces = NODES.map((node) => {
          const file = join(c.base, `strace-${node}.txt`);
          const proc = spawn(
            strace as string,
            ['-f', '-qq', '-e', 'trace=%file', '-o', file, '-p', String(agentPidOf(node))],
            { stdio: 'ignore' },
          );
          return { node, file, proc, exited: new Promise((r) => proc.once('exit', r)) };
        });
        try {
          await waitFor(
            () => traces.every((t) => existsSync(t.file) && readFileSync(t.file, 'utf8').length > 0),
            10_000,
            'strace to attach to every agent',
          );
          const sw = await c.cli(['switchover']);
          assert.equal(sw.code, 0, sw.stderr);
          const replica = NODES.find((n) => n !== leader) as string;
          const rs = await c.cli(['restart', replica]);
          assert.equal(rs.code, 0, rs.stderr);
          await settled();
        } finally {
          for (const t of traces) if (t.proc.exitCode === null) t.proc.kill('SIGINT');
          await Promise.all(traces.map((t) => t.exited));
        }
        for (const t of traces) {
          const text = readFileSync(t.file, 'utf8');
          const own = c.dataDir(t.node);
          assert.ok(text.includes(`"${own}/`), `the trace of ${t.node}'s agent shows its own data directory`);
          for (const other of NODES.filter((n) => n !== t.node))
            for (const dir of [c.dataDir(other), ha(other)]) {
              const hits = text.split('\n').filter((l) => l.includes(`"${dir}/`) || l.includes(`"${dir}"`));
              assert.deepEqual(hits.slice(0, 3), [], `${t.node}'s agent touched ${dir}`);
            }
        }
      },
    );

    it('changes nothing while paused, and acts again once unpaused', async () => {
      const leader = await settled();
      const paused = await c.cli(['pause']);
      assert.equal(paused.code, 0, paused.stderr);
      try {
        process.kill(-(c.postmasterPid(leader) as number), 'SIGKILL');
        await waitUntil(() => c.postmasterPid(leader) === null, 10_000, 'the postmaster to die');
        // Two TTLs: no agent restarts it, and no replica races for the key.
        await new Promise((r) => setTimeout(r, 4000));
        assert.equal(c.postmasterPid(leader), null, 'the crashed primary was left as it is');
        for (const n of NODES.filter((x) => x !== leader))
          assert.equal((await agentStatus(n))?.server?.kind, 'replica');
      } finally {
        const un = await c.cli(['unpause']);
        assert.equal(un.code, 0, un.stderr);
      }
      await settled();
    });

    it('fails over when the leader’s host dies (postmaster, agent and watchdog killed), and rejoins it when its agent is back', async () => {
      const r = await underLoad(
        async (leader) => {
          const pm = c.postmasterPid(leader) as number;
          for (const pid of [agentPidOf(leader), watchdogPidOf(leader)]) process.kill(pid, 'SIGKILL');
          process.kill(-pm, 'SIGKILL');
          await waitFor(
            async () => (await settledLeaderOtherThan(leader)) !== null,
            30_000,
            'another leader',
          );
        },
        async () => {
          const up = await c.cli(['up', '--ha']);
          assert.equal(up.code, 0, up.stderr);
        },
      );
      assert.notEqual(r.leader, r.before);
      console.log(`# host death: first write ${r.firstWriteMs} ms after the kill`);
      const bound = failoverBoundMs(HA_PROFILES.fast);
      assert.ok(
        r.firstWriteMs !== null && r.firstWriteMs <= bound,
        `first write ${r.firstWriteMs} ms, bound ${bound} ms`,
      );
    });

    it('keeps a leader whose promotion outlasts the TTL: the lease and its watchdog follow it (issue 31, defect 2)', async () => {
      let winner = '';
      let pidBefore: number | null = null;
      const r = await underLoad(
        async (leader) => {
          const replicas = NODES.filter((n) => n !== leader);
          const startups: number[] = [];
          for (const n of replicas) {
            const [row] = await c.sql<{ pid: number }>(
              n,
              "SELECT pid FROM pg_stat_activity WHERE backend_type = 'startup'",
            );
            startups.push((row as { pid: number }).pid);
          }
          // Their startup processes stand still: whoever wins the key promotes only once they go on.
          for (const pid of startups) process.kill(pid, 'SIGSTOP');
          try {
            for (const pid of [agentPidOf(leader), watchdogPidOf(leader)]) process.kill(pid, 'SIGKILL');
            process.kill(-(c.postmasterPid(leader) as number), 'SIGKILL');
            // The key in etcd (an agent's /status shows what its loop read before it acted): a
            // replica that holds it cannot finish promoting while its startup process stands still.
            await waitFor(
              async () => {
                const st = JSON.parse((await c.cli(['status', '--json'])).stdout) as {
                  ha?: { leader: string | null };
                };
                winner = replicas.includes(st.ha?.leader ?? '') ? (st.ha?.leader as string) : '';
                return winner !== '';
              },
              15_000,
              'a replica to win the key and start promoting',
            );
            pidBefore = c.postmasterPid(winner);
            // Three TTLs of the fast profile: the promotion waits on replay far past its lease's first term.
            await new Promise((res) => setTimeout(res, 3000));
            assert.equal(
              c.postmasterPid(winner),
              pidBefore,
              `${winner}'s watchdog left its promoting server alone`,
            );
          } finally {
            for (const pid of startups) process.kill(pid, 'SIGCONT');
          }
        },
        async () => {
          const up = await c.cli(['up', '--ha']);
          assert.equal(up.code, 0, up.stderr);
        },
      );
      assert.equal(r.leader, winner, 'the node that won the key leads: no second failover');
      assert.equal(c.postmasterPid(winner), pidBefore, 'promoted in place, never killed');
    });

    it('restarts a crashed postmaster of the leader, its agent alive', async () => {
      let term: number | undefined;
      const r = await underLoad(
        async (leader) => {
          term = (await agentStatus(leader))?.leader?.term;
          process.kill(-(c.postmasterPid(leader) as number), 'SIGKILL');
        },
        async () => undefined,
      );
      // In place: the same node leads under the same key (a failover would have taken a new one).
      assert.equal(r.leader, r.before, 'the same node leads');
      assert.equal((await agentStatus(r.leader))?.leader?.term, term, 'under the same leader key');
      console.log(
        `# postmaster crash: first write ${r.firstWriteMs} ms after, leader ${r.before} → ${r.leader}`,
      );
    });

    it('fences a leader whose agent is killed (the watchdog stops its server), fails over, and rejoins it', async () => {
      let victim = '';
      await underLoad(
        async (leader) => {
          victim = leader;
          process.kill(agentPidOf(leader), 'SIGKILL');
          await waitUntil(() => c.postmasterPid(leader) === null, 15_000, 'the watchdog to stop the server');
        },
        async () => {
          const up = await c.cli(['up', '--ha']);
          assert.equal(up.code, 0, up.stderr);
        },
      );
      assert.match(
        readFileSync(join(ha(victim), 'fence-watchdog.log'), 'utf8'),
        /lease deadline passed, killed postmaster/,
      );
    });

    it('rejoins a former primary that cannot start as a replica (its WAL went past the new leader’s fork)', async () => {
      // What an interrupted rejoin can leave (seen in the lab): standby.signal, a checkpoint past the
      // point where the new leader forked off, and the new leader's timeline history, so that the
      // server refuses to start as its standby ("requested timeline … is not a child of this
      // server's history"). Starting it again fails for ever; the agent must rewind it instead.
      const victim = await settled();
      for (const pid of [agentPidOf(victim), watchdogPidOf(victim)]) process.kill(pid, 'SIGKILL');
      process.kill(-(c.postmasterPid(victim) as number), 'SIGKILL');
      let next = '';
      await waitFor(
        async () => (next = (await settledLeaderOtherThan(victim)) ?? '') !== '',
        30_000,
        'another leader',
      );
      // Started by hand as a primary meanwhile, it writes past the fork, then stops. Only once its
      // killed server is wholly gone: backends still exiting, or a postmaster left an unreaped
      // zombie, make PostgreSQL refuse the directory (a CI run failed so).
      await waitPostmasterGone(c.dataDir(victim));
      c.handStart(victim, { asPrimary: true });
      handStarted.push(c.postmasterPid(victim) as number);
      await c.sql(
        victim,
        'SET synchronous_commit = local; CREATE TABLE forked (id int); INSERT INTO forked VALUES (1); CHECKPOINT',
      );
      c.handStop(victim);
      const dir = c.dataDir(victim);
      const { uid, gid } = statSync(dir);
      // The new leader's timeline, as its WAL file names say it (its checkpoint may still be on the old one).
      const walFile = (
        await c.sql<{ f: string }>(next, 'SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')
      )[0]?.f as string;
      const history = `${walFile.slice(0, 8)}.history`;
      for (const [file, text] of [
        [join(dir, 'pg_wal', history), readFileSync(join(c.dataDir(next), 'pg_wal', history))],
        [join(dir, 'standby.signal'), ''],
      ] as const) {
        writeFileSync(file, text);
        chownSync(file, uid, gid);
      }
      const up = await c.cli(['up', '--ha']);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(await settled(), next);
      const forked = await c.sql(victim, "SELECT to_regclass('forked') AS t");
      assert.equal(forked[0]?.['t'], null, 'its writes past the fork are gone (rewound)');
      assert.match(
        readFileSync(join(ha(victim), 'agent.log'), 'utf8'),
        /did not start as a replica of/,
        'it rejoined because its start as a replica failed',
      );
    });

    it('fences a leader whose agent hangs past the TTL (SIGSTOP), and lets it rejoin after SIGCONT', async () => {
      await underLoad(
        async (leader) => {
          const agent = agentPidOf(leader);
          process.kill(agent, 'SIGSTOP');
          try {
            await waitFor(
              async () => (await settledLeaderOtherThan(leader)) !== null,
              30_000,
              'another leader',
            );
          } finally {
            process.kill(agent, 'SIGCONT');
          }
        },
        async () => undefined,
      );
    });

    it('stops writes while etcd is down longer than the TTL, and elects a leader once it is back', async () => {
      let stoppedAt = 0;
      let resumedAt = 0;
      const r = await underLoad(
        async () => {
          const etcdPid = (
            JSON.parse(readFileSync(join(c.base, 'state', 'ha', 'etcd.pid'), 'utf8')) as { pid: number }
          ).pid;
          process.kill(etcdPid, 'SIGSTOP');
          stoppedAt = Date.now();
          await new Promise((resolve) => setTimeout(resolve, 5000));
          resumedAt = Date.now();
          process.kill(etcdPid, 'SIGCONT');
        },
        async () => undefined,
      );
      // The leader cannot tell an etcd outage from being cut off: it stops taking writes before
      // its lease (2 s) could run out for the others, and no one takes writes until etcd is back.
      const during = r.acks.filter((a) => a.sentAt > stoppedAt + 2000 && a.ackAt < resumedAt);
      assert.deepEqual(during, [], 'no write acknowledged while etcd was down past the TTL');
      assert.ok(
        r.acks.some((a) => a.sentAt < stoppedAt),
        'the probe wrote before the outage',
      );
    });

    it(
      'keeps a client writing through the HAProxy example of the docs, in both languages, across a failover',
      { skip: haproxy === null ? 'no haproxy (apt-get install haproxy)' : false },
      async () => {
        const [en, pt] = ['automatic-failover.md', 'pt-BR/failover-automatico.md'].map(
          (page) => /```haproxy\n([\s\S]*?)```/.exec(readFileSync(join(REPO, 'docs', page), 'utf8'))?.[1],
        );
        assert.ok(en, 'the English page holds an haproxy block');
        // The Portuguese page's block is the one run: what a reader of either page copies works.
        assert.equal(pt, en, 'the Portuguese page holds the same haproxy block');
        const block = pt;
        const [writePort, readPort] = [await freePort(), await freePort()];
        let cfg = block
          .replace('127.0.0.1:5000', `127.0.0.1:${writePort}`)
          .replace('127.0.0.1:5001', `127.0.0.1:${readPort}`);
        NODES.forEach((n, i) => {
          cfg = cfg
            .replaceAll(`:${54321 + i} `, `:${c.port(n)} `)
            .replaceAll(`port ${55321 + i}`, `port ${c.port(n) + API_OFFSET}`);
        });
        const cfgFile = join(c.base, 'haproxy.cfg');
        writeFileSync(cfgFile, cfg);
        const proxy = spawn(haproxy as string, ['-f', cfgFile, '-db'], { stdio: 'ignore' });
        handStarted.push(proxy.pid as number);
        const through = async (port: number) => {
          const rows = await sqlVia(
            port,
            c.superuserPassword(),
            'SELECT pg_is_in_recovery() AS ro, inet_server_port() AS port',
          );
          return rows[0] as { ro: boolean; port: number };
        };
        try {
          const leader = await settled();
          await waitFor(
            async () => (await through(writePort).catch(() => null))?.port === c.port(leader),
            10_000,
            'HAProxy to route writes to the leader',
          );
          assert.equal((await through(readPort)).ro, true, 'the read port reaches a replica');
          let newLeader = '';
          await underLoad(
            async (old) => {
              const pm = c.postmasterPid(old) as number;
              for (const pid of [agentPidOf(old), watchdogPidOf(old)]) process.kill(pid, 'SIGKILL');
              process.kill(-pm, 'SIGKILL');
              await waitFor(
                async () => (newLeader = (await settledLeaderOtherThan(old)) ?? '') !== '',
                30_000,
                'another leader',
              );
              await waitFor(
                async () => (await through(writePort).catch(() => null))?.port === c.port(newLeader),
                10_000,
                'HAProxy to route writes to the new leader',
              );
            },
            async () => {
              const up = await c.cli(['up', '--ha']);
              assert.equal(up.code, 0, up.stderr);
            },
            [{ host: '127.0.0.1', port: writePort }],
          );
        } finally {
          process.kill(proxy.pid as number, 'SIGKILL');
        }
      },
    );

    it(
      "routes through Patroni's own example haproxy.cfg, unchanged but for addresses, to the leader (issue 31, defect 11)",
      { skip: haproxy === null ? 'no haproxy (apt-get install haproxy)' : false },
      async () => {
        const leader = await settled();
        const [port, statsPort] = [await freePort(), await freePort()];
        const example = readFileSync(join(REPO, 'test', 'fixtures', 'patroni-haproxy.cfg'), 'utf8');
        const servers = NODES.map(
          (n) =>
            `    server postgresql_127.0.0.1_${c.port(n)} 127.0.0.1:${c.port(n)} maxconn 100 check port ${c.port(n) + API_OFFSET}`,
        ).join('\n');
        const cfg = example
          .replace('bind *:7000', `bind 127.0.0.1:${statsPort}`)
          .replace('bind *:5000', `bind 127.0.0.1:${port}`)
          .replace(/( {4}server .*\n?)+/, `${servers}\n`);
        assert.match(cfg, /option httpchk\n/, "checks GET / as Patroni's example does");
        const cfgFile = join(c.base, 'patroni-haproxy.cfg');
        writeFileSync(cfgFile, cfg);
        const proxy = spawn(haproxy as string, ['-f', cfgFile, '-db'], { stdio: 'ignore' });
        handStarted.push(proxy.pid as number);
        try {
          // inter 3s fall 3: the replicas are marked down within ~9 s, and then every connection
          // through it reaches the leader.
          let inARow = 0;
          await waitFor(
            async () => {
              const rows = await sqlVia(
                port,
                c.superuserPassword(),
                'SELECT inet_server_port() AS port',
              ).catch(() => null);
              inARow = rows?.[0]?.['port'] === c.port(leader) ? inARow + 1 : 0;
              return inARow >= 6;
            },
            30_000,
            "Patroni's example to route every connection to the leader",
          );
        } finally {
          process.kill(proxy.pid as number, 'SIGKILL');
        }
      },
    );

    it('fences a leader cut off from etcd alone (a TCP proxy), while the others elect a new one', async () => {
      const leaderNow = await settled();
      // Every agent is started again by hand, each reaching etcd through a proxy of its own.
      for (const n of [...NODES.filter((x) => x !== leaderNow), leaderNow]) {
        const pid = agentPidOf(n);
        process.kill(pid, 'SIGTERM');
        await waitUntil(() => !alive(pid), 20_000, `the agent of ${n} to stop`);
      }
      const proxies = new Map<string, Awaited<ReturnType<typeof tcpProxy>>>();
      const agents = new Map<string, number>();
      try {
        for (const n of NODES) {
          const proxy = await tcpProxy(readEtcdUrl());
          proxies.set(n, proxy);
          const log = openSync(join(ha(n), 'hand-agent.log'), 'a');
          const child = spawn(process.execPath, [CLI, '-c', c.specFile, 'agent', '--node', n], {
            cwd: c.base,
            env: { ...process.env, PGREPL_ETCD_ENDPOINTS: proxy.url, XDG_CACHE_HOME: join(c.base, 'cache') },
            stdio: ['ignore', log, log],
            detached: true,
          });
          closeSync(log);
          agents.set(n, child.pid as number);
          handStarted.push(child.pid as number);
        }
        let cutOff = '';
        await underLoad(
          async (leader) => {
            cutOff = leader;
            proxies.get(leader)?.cut();
            await waitFor(
              async () => (await settledLeaderOtherThan(leader)) !== null,
              30_000,
              'another leader',
            );
            proxies.get(leader)?.restore();
          },
          async () => undefined,
        );
        assert.notEqual(cutOff, '');
        assert.match(
          readFileSync(join(ha(cutOff), 'hand-agent.log'), 'utf8'),
          /fence: /,
          'the cut-off leader fenced itself',
        );
      } finally {
        const leader = (await settledLeaderOtherThan('')) ?? '';
        for (const n of [...NODES.filter((x) => x !== leader), leader]) {
          const pid = agents.get(n);
          if (pid === undefined || !alive(pid)) continue;
          process.kill(pid, 'SIGTERM');
          await waitUntil(() => !alive(pid), 20_000, `the hand-started agent of ${n} to stop`);
        }
        for (const p of proxies.values()) await p.close();
        const up = await c.cli(['up', '--ha']);
        assert.equal(up.code, 0, up.stderr);
        await settled();
      }
    });

    const readEtcdUrl = () => {
      const rec = JSON.parse(readFileSync(join(c.base, 'state', 'ha', 'ha.json'), 'utf8')) as {
        localEtcd: { clientPort: number };
      };
      return `http://127.0.0.1:${rec.localEtcd.clientPort}`;
    };

    // Last: it leaves two nodes.
    it('removes a replica through its agent: the agent ends, the spec and the leader forget it, and a failover still works', async () => {
      const leader = await settled();
      const victim = NODES.find((n) => n !== leader) as string;
      const survivor = NODES.find((n) => n !== leader && n !== victim) as string;
      const victimAgent = agentPidOf(victim);
      const r = await c.cli(['remove', victim, '--yes', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.deepEqual(
        [out['throughAgents'], out['agentEnded'], out['slotDropped'], out['syncSetNarrowed']],
        [true, true, true, true],
      );
      assert.equal(c.postmasterPid(victim), null);
      assert.equal(alive(victimAgent), false, 'its agent ended');
      assert.doesNotMatch(readFileSync(c.specFile, 'utf8'), new RegExp(`name: ${victim}\\b`));
      await waitFor(
        async () =>
          !String(
            (
              await c.sql<{ s: string }>(leader, "SELECT current_setting('synchronous_standby_names') AS s")
            )[0]?.s,
          ).includes(victim),
        10_000,
        'the leader’s agent to render synchronous_standby_names without the removed node',
      );
      // The quorum rule now counts the survivor alone: it may take over from a dead leader.
      const pm = c.postmasterPid(leader) as number;
      for (const pid of [agentPidOf(leader), watchdogPidOf(leader)]) process.kill(pid, 'SIGKILL');
      process.kill(-pm, 'SIGKILL');
      await waitFor(
        async () => (await settledLeaderOtherThan(leader)) === survivor,
        30_000,
        `${survivor} to take over with the narrowed synchronous set`,
      );
    });

    const settledLeaderOtherThan = async (old: string): Promise<string | null> => {
      for (const n of NODES.filter((x) => x !== old)) {
        const s = await agentStatus(n);
        if (s?.leader?.ready && s.leader.node !== old && s.server?.kind === 'primary' && s.leader.node === n)
          return n;
      }
      return null;
    };
  },
);

/** A TCP proxy on loopback to `target` (http://host:port) that the test can cut and restore. */
async function tcpProxy(
  target: string,
): Promise<{ url: string; cut(): void; restore(): void; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  const { connect } = await import('node:net');
  const sockets = new Set<Socket>();
  let open = true;
  const server: Server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  const listenPort = await freePort();
  await new Promise<void>((r) => server.listen(listenPort, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${listenPort}`,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      open = true;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
