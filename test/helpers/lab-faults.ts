import type { Lab, LabStatus } from './lab.js';
import { NO_DELAY } from './lab-proxy.js';
import { applyNft } from './netns-hosts.js';
import type { TestHost } from './netns-hosts.js';
import { waitUntil } from './test-cluster.js';

/**
 * One kind of fault on the lab's leader host: `inject` breaks something, `heal` mends what a
 * person would mend (starts a killed agent again, brings a link back, lifts a partition); the
 * agents must do the rest.
 */
export interface LabFault {
  readonly name: string;
  /** Whether the agents must elect another leader (the test then waits for one before healing). */
  readonly failsOver: boolean;
  /** How long the fault lasts before it is healed, when it does not fail over. */
  readonly holdMs: number;
  inject(lab: Lab, leader: TestHost): Promise<void> | void;
  heal(lab: Lab, leader: TestHost): Promise<void> | void;
}

/** The file that fills a host's disk, on the same disk as its data directories and etcd's. */
const FILLER = '/var/lib/pgrepl-lab-filler';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const signal = (pid: number | null, sig: NodeJS.Signals) => {
  if (pid === null) throw new Error('nothing runs there to signal');
  process.kill(pid, sig);
};

/** The fence watchdog the agent of `host` started (its PID file on the host's disk). */
const watchdogPid = (lab: Lab, host: TestHost): number | null => {
  const r = lab.net.run(host, ['cat', `/var/lib/pgrepl/lab/ha/agents/${host.name}/fence-watchdog.pid`]);
  if (r.code !== 0) return null;
  return (JSON.parse(r.out) as { pid: number }).pid;
};

/** A host's power cut: its agent, its fence watchdog, its postmaster's whole process group. */
const killHost = (lab: Lab, host: TestHost) => {
  const pm = lab.postmasterPid(host);
  signal(lab.pid(host, 'agent'), 'SIGKILL');
  const wd = watchdogPid(lab, host);
  if (wd !== null) signal(wd, 'SIGKILL');
  if (pm !== null) process.kill(-pm, 'SIGKILL');
};

/** A host's only link set `state`: down, it is cut from every other host (no RST: nothing answers). */
const link = (lab: Lab, host: TestHost, state: 'up' | 'down') =>
  void lab.net.run(host, ['ip', 'link', 'set', 'eth0', state]);

/** Starts the host's etcd member again if the lab started one there and it has stopped. */
const restartEtcd = (lab: Lab, host: TestHost) => {
  if (lab.pid(host, 'etcd') === null) lab.start(host, 'etcd');
};

/** The replica a replica's fault hits: the first host of the lab that does not lead. */
const replicaOf = (lab: Lab, leader: TestHost): TestHost => {
  const r = lab.hosts.find((h) => h !== leader);
  if (!r) throw new Error('the lab has no replica');
  return r;
};

/** A POST to etcd's JSON gateway on `host`'s member, from that host, with its client certificate. */
const etcdPost = (lab: Lab, host: TestHost, path: string, body: object): string | null => {
  const ask = [
    "const fs = require('fs'), https = require('https');",
    'const [addr, tls, path, body] = process.argv.slice(1);',
    "const f = (n) => fs.readFileSync(tls + '/' + n);",
    "const req = https.request({ host: addr, port: 2379, path, method: 'POST',",
    "  ca: f('ca.crt'), cert: f('member.crt'), key: f('member.key'), timeout: 2000 },",
    "  (res) => { let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => process.stdout.write(b)); });",
    "req.on('error', () => process.exit(1)); req.end(body);",
  ].join('\n');
  const r = lab.net.run(host, [
    process.execPath,
    '-e',
    ask,
    host.address,
    '/etc/pgrepl/lab/etcd-tls',
    path,
    JSON.stringify(body),
  ]);
  return r.code === 0 ? r.out : null;
};

/** Each member's ID and the raft leader's, as the members say (only the first three hosts run one). */
const etcdMembers = (lab: Lab): { ids: Map<string, TestHost>; leader: string | null } => {
  const ids = new Map<string, TestHost>();
  let leader: string | null = null;
  for (const h of lab.hosts) {
    const out = etcdPost(lab, h, '/v3/maintenance/status', {});
    if (out === null) continue;
    try {
      const st = JSON.parse(out) as { header?: { member_id?: string }; leader?: string };
      if (st.header?.member_id) ids.set(st.header.member_id, h);
      leader ??= st.leader ?? null;
    } catch {
      // it answered nothing
    }
  }
  return { ids, leader };
};

/** The host whose etcd member is the raft leader now. */
export const raftLeader = (lab: Lab): TestHost | null => {
  const { ids, leader } = etcdMembers(lab);
  return leader === null ? null : (ids.get(leader) ?? null);
};

/** Hands etcd's raft leadership to `to`'s member (etcd's move-leader, asked of the leader's member). */
export const moveRaftLeader = (lab: Lab, to: TestHost): void => {
  const { ids, leader } = etcdMembers(lab);
  const from = leader === null ? undefined : ids.get(leader);
  const target = [...ids].find(([, h]) => h === to)?.[0];
  if (!from || target === undefined) throw new Error(`no raft leader, or no member on ${to.name}`);
  if (from === to) return;
  const out = etcdPost(lab, from, '/v3/maintenance/transfer-leadership', { targetID: target });
  if (out === null || /"error"/.test(out))
    throw new Error(`etcd did not move its leader to ${to.name}: ${out}`);
};

/** The host whose member a raft-leader fault killed, for heal. */
let raftVictim: TestHost | null = null;

/** Removes what the faults put in a host's nftables (their one table, inet labfault): heal. */
const dropTable = (lab: Lab, host: TestHost) =>
  lab.net.run(host, ['nft', 'delete', 'table', 'inet', 'labfault']);

/** The other hosts' addresses, as an nftables set. */
const peersOf = (lab: Lab, host: TestHost) =>
  `{ ${lab.hosts
    .filter((h) => h !== host)
    .map((h) => h.address)
    .join(', ')} }`;

/**
 * Drops TCP between `host` and the other hosts on `ports` of `host` (incoming), and with `outgoing`
 * on the same ports of the others: a partition of those services alone.
 */
const cutFromPeers = (lab: Lab, host: TestHost, o: { ports: string; outgoing: boolean }) => {
  const peers = peersOf(lab, host);
  const chain = (name: string, hook: string, match: string) =>
    `  chain ${name} { type filter hook ${hook} priority 0; policy accept; ${match} tcp dport ${o.ports} drop; }`;
  applyNft(
    lab.net,
    host,
    [
      'table inet labfault {',
      chain('in', 'input', `ip saddr ${peers}`),
      ...(o.outgoing ? [chain('out', 'output', `ip daddr ${peers}`)] : []),
      '}',
    ].join('\n'),
  );
};

export const LAB_FAULTS: readonly LabFault[] = [
  {
    name: 'kill -9 of the primary postmaster',
    failsOver: false,
    holdMs: 0,
    inject: (lab, leader) => signal(lab.postmasterPid(leader), 'SIGKILL'),
    heal: () => undefined,
  },
  {
    name: 'kill -9 of the leader host (agent, watchdog, postmaster)',
    failsOver: true,
    holdMs: 0,
    inject: (lab, leader) => killHost(lab, leader),
    heal: (lab, leader) => void lab.start(leader, 'agent'),
  },
  {
    name: "SIGSTOP of the leader's agent past its lease, then SIGCONT",
    failsOver: true,
    holdMs: 0,
    inject: (lab, leader) => signal(lab.pid(leader, 'agent'), 'SIGSTOP'),
    heal: (lab, leader) => signal(lab.pid(leader, 'agent'), 'SIGCONT'),
  },
  {
    name: "the leader's link down, then up",
    failsOver: true,
    holdMs: 0,
    inject: (lab, leader) => link(lab, leader, 'down'),
    heal: (lab, leader) => link(lab, leader, 'up'),
  },
  {
    // Every other agent reaches it over the API and promises not to promote (failsafe, on by
    // default): it goes on writing, alone, until etcd is back.
    name: 'the leader cut from etcd only (nftables) past its lease, then healed',
    failsOver: false,
    holdMs: 3000,
    inject: (lab, leader) => cutFromPeers(lab, leader, { ports: '{ 2379, 2380 }', outgoing: true }),
    heal: (lab, leader) => void dropTable(lab, leader),
  },
  {
    name: "the replicas cut from the primary's PostgreSQL, not from etcd",
    failsOver: false,
    holdMs: 3000,
    inject: (lab, leader) => cutFromPeers(lab, leader, { ports: '5432', outgoing: false }),
    heal: (lab, leader) => void dropTable(lab, leader),
  },
  {
    name: "kill -9 of the etcd member on the leader's host",
    failsOver: false,
    holdMs: 3000,
    inject: (lab, leader) => signal(lab.pid(leader, 'etcd'), 'SIGKILL'),
    heal: (lab, leader) => void lab.start(leader, 'etcd'),
  },
  {
    // In sync mode the other replica goes on acknowledging (ANY 1); the killed one is rejoined.
    name: "kill -9 of a replica's host (agent, watchdog, postmaster)",
    failsOver: false,
    holdMs: 3000,
    inject: (lab, leader) => killHost(lab, replicaOf(lab, leader)),
    heal: (lab, leader) => void lab.start(replicaOf(lab, leader), 'agent'),
  },
  {
    name: "a replica's link down, then up",
    failsOver: false,
    holdMs: 3000,
    inject: (lab, leader) => link(lab, replicaOf(lab, leader), 'down'),
    heal: (lab, leader) => link(lab, replicaOf(lab, leader), 'up'),
  },
  {
    // Wherever it runs: a new raft leader is elected among the two others (500 ms with the fast
    // profile's election timeout), during which no lease is renewed and no key written.
    name: 'kill -9 of the etcd raft leader, wherever it runs',
    failsOver: false,
    holdMs: 3000,
    inject: (lab) => {
      raftVictim = raftLeader(lab);
      if (raftVictim === null) throw new Error('no etcd member says who the raft leader is');
      signal(lab.pid(raftVictim, 'etcd'), 'SIGKILL');
    },
    heal: (lab) => {
      if (raftVictim !== null) restartEtcd(lab, raftVictim);
      raftVictim = null;
    },
  },
  {
    // nftables drops a random share of every packet in and out of the host (there is no netem):
    // TCP retransmits, etcd renewals and the client's writes slow down; a failover may or may not come.
    name: "30 % of the leader's packets lost (nftables numgen), both ways",
    failsOver: false,
    holdMs: 3000,
    inject: (lab, leader) =>
      applyNft(
        lab.net,
        leader,
        [
          'table inet labfault {',
          '  chain in { type filter hook input priority 0; policy accept; iifname "eth0" numgen random mod 100 < 30 drop; }',
          '  chain out { type filter hook output priority 0; policy accept; oifname "eth0" numgen random mod 100 < 30 drop; }',
          '}',
        ].join('\n'),
      ),
    heal: (lab, leader) => void dropTable(lab, leader),
  },
  {
    // pg_wal, the data files and the etcd member's WAL share the host's disk, as on many hosts:
    // writes that need a new block fail (not acknowledged), a checkpoint cannot write, the etcd
    // member may stop. Healed by removing the file, and starting the member again if it stopped.
    name: "the leader host's disk full (a file fills it)",
    failsOver: false,
    holdMs: 3000,
    inject: (lab, leader) =>
      void lab.net.run(leader, ['sh', '-c', `dd if=/dev/zero of=${FILLER} bs=1M 2>/dev/null; sync`]),
    heal: (lab, leader) => {
      lab.net.run(leader, ['rm', '-f', FILLER]);
      restartEtcd(lab, leader);
    },
  },
  {
    // The kernel has no netem: every connection between hosts passes through the lab's proxies
    // (lab-proxy.ts), which hold each chunk 150–250 ms each way; a connection's bytes keep their
    // order, chunks of different connections overtake each other. etcd's raft heartbeats (100 ms
    // with the fast profile) and the lease renewals of the leader's host come late.
    name: "150–250 ms of latency on every connection of the leader's host, each way",
    failsOver: false,
    holdMs: 3000,
    inject: (lab, leader) => lab.delay({ hosts: [leader.name], delayMs: 150, jitterMs: 100 }),
    heal: (lab) => lab.delay(NO_DELAY),
  },
  {
    // libfaketime steps the wall clock of the leader's agent and PostgreSQL (not its etcd member's:
    // a Go program reads the clock without libc) an hour ahead, and back at heal. No deadline may
    // move (they are on the monotonic clock); the switchover asked meanwhile must be carried out,
    // though the request's time, written by the operator's clock, is an hour old to that agent.
    name: "the leader host's wall clock 1 h ahead, a switchover asked meanwhile, then stepped back",
    failsOver: true,
    holdMs: 0,
    inject: async (lab, leader) => {
      lab.setClock(leader, 3600);
      // libfaketime reads the offset again at most once a second.
      await sleep(1500);
      const r = await lab.cli(['switchover', '--json']);
      if (r.code !== 0) throw new Error(`switchover with ${leader.name}'s clock 1 h ahead: ${r.stderr}`);
    },
    heal: (lab, leader) => lab.setClock(leader, 0),
  },
  {
    // Asymmetric: what the leader sends reaches the others, nothing they send reaches it (TCP
    // handshakes and etcd's answers included), the operator's and the clients' traffic aside.
    name: 'the leader hears no other host, while its own packets reach them',
    failsOver: true,
    holdMs: 0,
    inject: (lab, leader) => hearNoOne(lab, leader),
    heal: (lab, leader) => void dropTable(lab, leader),
  },
  {
    // The same, with etcd's raft leader moved to the leader's host first (the agents move it away,
    // and it takes them a look to): that member goes on renewing its agent's lease after the others
    // elected another raft leader, which knows nothing of those renewals (etcd 3.4 renews on the
    // leader without the others). The suspected cause of the one split brain of the async soak.
    name: "the leader hears no other host, etcd's raft leader on its host",
    failsOver: true,
    holdMs: 0,
    inject: (lab, leader) => {
      moveRaftLeader(lab, leader);
      hearNoOne(lab, leader);
    },
    heal: (lab, leader) => void dropTable(lab, leader),
  },
];

/** Nothing another host sends reaches `host`; what it sends reaches them. */
const hearNoOne = (lab: Lab, host: TestHost) =>
  applyNft(
    lab.net,
    host,
    [
      'table inet labfault {',
      `  chain in { type filter hook input priority 0; policy accept; ip saddr ${peersOf(lab, host)} drop; }`,
      '}',
    ].join('\n'),
  );

/**
 * Waits until the lab's status (as the operator reads it) has a primary that `done` accepts;
 * returns it. On a timeout the error carries the end of every agent's log.
 */
async function labPrimaryWhen(
  lab: Lab,
  timeoutMs: number,
  what: string,
  done: (st: LabStatus & { primary: string }) => boolean,
): Promise<string> {
  let primary = '';
  await waitUntil(
    async () => {
      const st = await lab.status().catch(() => null);
      if (!st?.primary || !done({ ...st, primary: st.primary })) return false;
      primary = st.primary;
      return true;
    },
    timeoutMs,
    what,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${lab.logs()}`, { cause: err });
  });
  return primary;
}

/** Waits until one node is primary and every other streams from it; returns the primary. */
export const labSettled = (lab: Lab, timeoutMs: number): Promise<string> =>
  labPrimaryWhen(lab, timeoutMs, 'one primary, every other node streaming', (st) =>
    st.nodes.filter((n) => n.name !== st.primary).every((n) => n.state === 'streaming'),
  );

/** Waits until a node other than `old` answers as the primary (the others need not stream yet). */
export const labFailedOver = (lab: Lab, old: string, timeoutMs: number): Promise<string> =>
  labPrimaryWhen(lab, timeoutMs, `a primary other than ${old}`, (st) => st.primary !== old);
