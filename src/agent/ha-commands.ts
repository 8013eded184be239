import { PgreplError } from '../errors.js';
import { findNode } from '../cluster-spec/cluster-spec.js';
import type { ClusterSpec, HaSpec } from '../cluster-spec/cluster-spec.js';
import { compareCandidates } from '../cluster/decide/rank-candidates.js';
import { failoverCandidate } from '../cluster/decide/rank-candidates.js';
import { sameSyncSet } from '../cluster/decide/decide-sync-set.js';
import { etcdClient } from '../dcs/etcd-client.js';
import type { EtcdClient } from '../dcs/etcd-client.js';
import { haStore } from '../dcs/ha-store.js';
import type { HaStore } from '../dcs/ha-store.js';
import type { HaState } from '../dcs/ha-values.js';
import { effectiveHa, etcdEndpoints } from './ha-services.js';
import { nodeOf, sqlOn } from '../cluster/context/node-sql.js';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { synchronousStandbyNames } from '../postgres/render-postgresql-conf.js';
import { askAgent, waitAgentGone } from './agent-client.js';
import type { NodeOperationResult } from './agent-operations.js';

/** The cluster's etcd and HA settings, when agents may run it. */
export interface HaTarget {
  readonly ha: HaSpec;
  readonly etcd: EtcdClient;
  readonly store: HaStore;
}

export function haTarget(
  spec: ClusterSpec,
  env: Readonly<Record<string, string | undefined>>,
): HaTarget | undefined {
  const ha = effectiveHa(spec);
  if (!ha) return undefined;
  const etcd = etcdClient({ endpoints: etcdEndpoints(spec, ha, env), requestTimeoutMs: 2000 });
  return { ha, etcd, store: haStore(etcd, spec.cluster) };
}

/** Whether agents run the cluster now (any member record in etcd), and whether they are paused. */
export async function agentsActive(
  spec: ClusterSpec,
  t: HaTarget,
): Promise<{ active: boolean; paused: boolean }> {
  try {
    const s = await t.store.read();
    return { active: s.members.size > 0, paused: s.view.paused };
  } catch {
    // etcd does not answer: no agent can act either (a leader fences itself); manual commands stay possible.
    return { active: false, paused: false };
  }
}

/** The cluster's etcd when agents run it now (paused or not): commands then go through them. */
export async function agentsRunning(
  spec: ClusterSpec,
  env: Readonly<Record<string, string | undefined>>,
): Promise<HaTarget | undefined> {
  const t = haTarget(spec, env);
  return t && (await agentsActive(spec, t)).active ? t : undefined;
}

/**
 * Restarts through the agents: the replicas first, each streaming again before the next, then the
 * leader in place (or, with `switchover`, a switchover, after which its agent restarts it as a replica).
 */
export async function restartThroughAgents(
  spec: ClusterSpec,
  t: HaTarget,
  o: { switchover: boolean },
): Promise<{ restarted: NodeOperationResult[]; switchover: AgentSwitchover | null }> {
  const s = await t.store.read();
  const leader = s.view.leader?.node ?? null;
  const replicas = [...s.members.values()].filter((m) => m.role === 'replica' && m.node !== leader);
  const restarted: NodeOperationResult[] = [];
  for (const r of replicas) restarted.push(await askAgent<NodeOperationResult>(spec, t, r.node, '/restart'));
  if (leader === null || s.members.get(leader)?.role !== 'primary') return { restarted, switchover: null };
  if (o.switchover) return { restarted, switchover: await switchoverThroughAgents(spec, t, undefined) };
  restarted.push(await askAgent<NodeOperationResult>(spec, t, leader, '/restart'));
  return { restarted, switchover: null };
}

export interface AgentRemoval<T> {
  /** What `detach` returned. */
  readonly removal: T;
  /**
   * Its agent's process is gone (on this machine: its PID exited; on another host: its API no
   * longer answers), and its record in etcd with it. False: it had not ended within 20 s.
   */
  readonly agentEnded: boolean;
  /** The leader recorded the synchronous standbys without it (sync and quorum modes). */
  readonly syncSetNarrowed: boolean | null;
}

/**
 * `remove` of a replica whose agent runs: its agent stops its server and ends; `detach` then takes
 * the node out of the spec (and drops its slot); the other agents follow the spec file, and the
 * leader records the narrower synchronous set once that is safe. Waits for each of those steps.
 */
export async function removeThroughAgents<T>(
  spec: ClusterSpec,
  t: HaTarget,
  name: string,
  detach: () => Promise<T>,
): Promise<AgentRemoval<T>> {
  const s = await t.store.read();
  if (s.view.leader?.node === name)
    throw new PgreplError(
      'E_IS_PRIMARY',
      `${name} is the primary; switch over first (\`pgrepl switchover\`), then remove it; nothing was changed`,
    );
  const record = s.members.get(name);
  if (record) await askAgent(spec, t, name, '/leave');
  const deadline = Date.now() + 20_000;
  const ended =
    record === undefined ||
    ((await waitFor(t, spec, (x) => !x.members.has(name), 20_000, `${name}'s agent to end`)
      .then(() => true)
      .catch(() => false)) &&
      (await waitAgentGone(record, findNode(spec, name)?.host ?? '', deadline - Date.now())));
  const removal = await detach();
  await t.store.holdStopped(name, false);
  if (spec.replication.mode === 'async') return { removal, agentEnded: ended, syncSetNarrowed: null };
  const narrowed = await waitFor(
    t,
    spec,
    (x) => x.view.sync !== null && !x.view.sync.standbys.includes(name),
    20_000,
    `the leader to record the synchronous standbys without ${name}`,
  )
    .then(() => true)
    .catch(() => false);
  return { removal, agentEnded: ended, syncSetNarrowed: narrowed };
}

/**
 * Commands that change topology would fight the agents (a manual promote under a running leader, a
 * stop the leader's agent restarts): while agents run and are not paused, they are refused.
 */
export async function refuseWhileAgentsRun(
  spec: ClusterSpec,
  env: Readonly<Record<string, string | undefined>>,
  command: string,
): Promise<void> {
  const t = haTarget(spec, env);
  if (!t) return;
  const { active, paused } = await agentsActive(spec, t);
  if (active && !paused)
    throw new PgreplError(
      'E_HA_ACTIVE',
      `agents run cluster ${spec.cluster}, and a manual \`${command}\` would fight them; ` +
        '`switchover`, `promote`, `restart`, `reload`, `stop NODE`, `start NODE`, `remove` and `set-mode` go through the agents. For ' +
        'anything else, `pgrepl pause` first (agents then only observe), and `pgrepl unpause` after; nothing was changed',
    );
}

/**
 * `set-mode` while agents run: they take a spec file that changed at their next loop, so the
 * command only needs the spec edited (by the caller) and all agents reading that one file, i.e. on
 * this machine. Refuses otherwise, and while paused (the agents would not act).
 */
export async function assertAgentsTakeSpec(ctx: ClusterContext, t: HaTarget): Promise<void> {
  const s = await t.store.read();
  if (s.view.paused)
    throw new PgreplError(
      'E_PAUSED',
      'the agents are paused and would not act: `pgrepl unpause` first; nothing was changed',
    );
  const elsewhere = ctx.spec.nodes.filter((n) => !ctx.localNodes.has(n.name)).map((n) => n.name);
  if (elsewhere.length > 0)
    throw new PgreplError(
      'E_HA_ACTIVE',
      `the agents of ${elsewhere.join(', ')} run on other hosts and read their own spec files there, which this ` +
        "command cannot edit: change `replication` in every host's pgrepl.yaml (each agent takes it at its next loop); nothing was changed",
    );
  if (!s.view.leader?.ready)
    throw new PgreplError(
      'E_NO_PRIMARY',
      'no agent holds the leader key now; set the mode once there is a leader',
    );
}

/**
 * Waits until the leader's agent has taken the spec of `ctx` (just edited): its server runs the
 * synchronous_standby_names that spec renders, and in sync and quorum modes etcd holds its
 * synchronous set (a wider one is recorded before the server has it, a narrower one once every
 * commit acknowledged before is held by the new set). Returns the leader and the setting.
 */
export async function waitModeTaken(
  ctx: ClusterContext,
  t: HaTarget,
): Promise<{ leader: string; synchronousStandbyNames: string }> {
  const { spec } = ctx;
  const timeoutMs = 10_000 + 3 * t.ha.loopWaitMs;
  const deadline = Date.now() + timeoutMs;
  let seen = 'nothing yet';
  for (;;) {
    const s = await t.store.read();
    const leader = s.view.leader?.ready ? s.view.leader.node : null;
    if (leader !== null) {
      const others = spec.nodes.filter((n) => n.name !== leader).map((n) => n.name);
      const want = synchronousStandbyNames(spec.replication.mode, spec.replication.syncCount, others);
      const runs = await sqlOn(ctx, nodeOf(ctx, leader), async (q) => {
        const [row] = await q.query<{ v: string }>(
          "SELECT current_setting('synchronous_standby_names') AS v",
        );
        return row?.v ?? '';
      }).catch(() => null);
      const recorded = s.view.sync;
      const recordedOk =
        spec.replication.mode === 'async' ||
        (recorded !== null && sameSyncSet(recorded, { count: spec.replication.syncCount, standbys: others }));
      if (runs === want && recordedOk) return { leader, synchronousStandbyNames: runs };
      seen = `${leader} runs synchronous_standby_names '${runs ?? '?'}', the spec says '${want}'${recordedOk ? '' : '; etcd does not hold its synchronous set yet'}`;
    }
    if (Date.now() > deadline)
      throw new PgreplError(
        'E_TIMEOUT',
        `the spec has the new mode, but the leader's agent has not taken it within ${timeoutMs / 1000} s (${seen}); see its log`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `pause`: maintenance mode. Waits until every live agent says it observes only. */
export async function pauseAgents(spec: ClusterSpec, t: HaTarget, on: boolean): Promise<string[]> {
  await t.store.setPaused(on);
  const agents = await waitFor(
    t,
    spec,
    (s) => [...s.members.values()].every((m) => m.reason.startsWith('paused') === on),
    10_000,
    on ? 'every agent to report it is paused' : 'every agent to leave the pause',
  );
  return [...agents.members.keys()];
}

export interface AgentSwitchover {
  readonly oldPrimary: string;
  readonly newPrimary: string;
  /** From the request to the new leader's announcement: writes were impossible for at most this long. */
  readonly ms: number;
  readonly oldPrimaryRejoined: boolean;
}

/**
 * `switchover` through the agents: records the request in etcd; the leader's agent stops its server
 * cleanly and gives up the key; the target's agent promotes once it holds the shutdown checkpoint;
 * the old leader's agent rejoins it. Waits for each step, and says why when the leader refused.
 */
export async function switchoverThroughAgents(
  spec: ClusterSpec,
  t: HaTarget,
  to: string | undefined,
): Promise<AgentSwitchover> {
  const s = await t.store.read();
  if (s.view.paused)
    throw new PgreplError(
      'E_PAUSED',
      'the agents are paused and would not act: `pgrepl unpause` first (or, paused, switch over by hand with the agents out of the way)',
    );
  const leader = s.view.leader;
  if (!leader?.ready)
    throw new PgreplError(
      'E_NO_PRIMARY',
      'no agent holds the leader key now; a switchover needs a primary to hand over from',
    );
  const target = to ?? bestReplica(spec, s, t.ha, leader.node);
  if (!target) throw new PgreplError('E_NO_CANDIDATE', 'no replica with a live agent can take over');
  if (target === leader.node) throw new PgreplError('E_IS_PRIMARY', `${target} is the primary already`);
  const m = s.members.get(target);
  if (!m || m.role !== 'replica')
    throw new PgreplError(
      'E_NOT_A_REPLICA',
      `${target} is not a running replica with a live agent (${m?.role ?? 'no agent'})`,
    );
  // The rule the agents go by in a failover: never-promote marks, its own problem, the lag cap.
  const why = candidatesIn(spec, s, t.ha, leader.node).find((c) => c.name === target)?.problem ?? null;
  if (why !== null) {
    const node = spec.nodes.find((n) => n.name === target);
    const code = m.problem
      ? 'E_UNHEALTHY'
      : node?.noFailover || node?.failoverPriority === 0
        ? 'E_NO_CANDIDATE'
        : 'E_BEHIND';
    throw new PgreplError(code, `${target} cannot take over: ${why}; nothing was changed`);
  }
  const began = Date.now();
  await t.store.requestSwitchover({ from: leader.node, to: target, at: began });
  try {
    await waitFor(
      t,
      spec,
      (x) => {
        const refused = x.switchoverRefused;
        if (refused)
          throw new PgreplError(
            'E_SWITCHOVER_ABANDONED',
            `${leader.node}'s agent refused: ${refused}; nothing was changed`,
          );
        return x.view.leader?.node === target && x.view.leader.ready;
      },
      30_000,
      `${target} to take over`,
    );
    const ms = Date.now() - began;
    let oldPrimaryRejoined = true;
    try {
      await waitFor(
        t,
        spec,
        (x) =>
          x.members.get(leader.node)?.role === 'replica' && x.members.get(leader.node)?.decision === 'wait',
        20_000,
        `${leader.node} to stream from ${target}`,
      );
    } catch {
      oldPrimaryRejoined = false;
    }
    return { oldPrimary: leader.node, newPrimary: target, ms, oldPrimaryRejoined };
  } finally {
    await t.store.clearSwitchover().catch(() => undefined);
  }
}

export interface AgentFailover {
  readonly newPrimary: string;
  /** The node the last leader position was recorded by; null when none was. */
  readonly oldPrimary: string | null;
  /** From the request to the new leader's announcement. */
  readonly ms: number;
  readonly forced: boolean;
  /** The other replicas with a live agent that stream from it now, and those that do not yet. */
  readonly followers: string[];
  readonly notFollowing: string[];
}

/**
 * `promote` through the agents (a manual failover): only while no one holds the leader key, which
 * means no agent can still run a writable primary (a live leader renews it; a dead one's lease ran
 * out and its watchdog fenced it). The request names the target; its agent races alone, and with
 * `force` also past maximumLagOnFailover, the sync rule and its own problem. Works while paused.
 */
export async function failoverThroughAgents(
  spec: ClusterSpec,
  t: HaTarget,
  to: string | undefined,
  force: boolean,
): Promise<AgentFailover> {
  const s = await t.store.read();
  const leader = s.view.leader;
  if (leader) {
    const m = s.members.get(leader.node);
    throw new PgreplError(
      'E_PRIMARY_RUNNING',
      `${leader.node} holds the leader key (its agent reports its server ${m?.role ?? 'unknown'}); a promotion now ` +
        'would make a second primary. `pgrepl switchover --to NODE` hands over cleanly; if its host is gone, the ' +
        `key expires within ${t.ha.ttlSeconds} s and the agents fail over; nothing was changed`,
    );
  }
  const target = to ?? bestReplica(spec, s, t.ha, '');
  if (!target) throw new PgreplError('E_NO_CANDIDATE', 'no replica with a live agent can be promoted');
  const node = spec.nodes.find((n) => n.name === target);
  const m = s.members.get(target);
  if (!m || m.role !== 'replica')
    throw new PgreplError(
      'E_NOT_A_REPLICA',
      `${target} is not a running replica with a live agent (${m?.role ?? 'no agent'}); nothing was changed`,
    );
  if (node?.noFailover || node?.failoverPriority === 0)
    throw new PgreplError(
      'E_NO_CANDIDATE',
      `${target} is marked never to be promoted (noFailover or failoverPriority 0) in ${spec.source}`,
    );
  if (m.problem && !force)
    throw new PgreplError(
      'E_UNHEALTHY',
      `${target} cannot take over: ${m.problem}; \`--force\` promotes it anyway (commits only others hold are lost)`,
    );
  const began = Date.now();
  await t.store.requestFailover({ to: target, force, at: began });
  try {
    await waitFor(
      t,
      spec,
      (x) => {
        const l = x.view.leader;
        if (l?.ready && l.node !== target)
          throw new PgreplError(
            'E_PRIMARY_RUNNING',
            `${l.node} took the leader key first (an automatic failover); nothing else was changed`,
          );
        return l?.node === target && l.ready;
      },
      30_000,
      `${target} to take the leader key and promote (its agent: ${m.reason})`,
    );
    const ms = Date.now() - began;
    const others = [...s.members.values()]
      .filter((r) => r.node !== target && r.role === 'replica')
      .map((r) => r.node);
    let last = s;
    try {
      last = await waitFor(
        t,
        spec,
        (x) =>
          others.every((n) => {
            const r = x.members.get(n);
            return !r || (r.role === 'replica' && r.decision === 'wait' && r.at > began);
          }),
        20_000,
        `${others.join(', ')} to follow ${target}`,
      );
    } catch {
      last = await t.store.read();
    }
    const following = (n: string) =>
      last.members.get(n)?.role === 'replica' && last.members.get(n)?.decision === 'wait';
    return {
      newPrimary: target,
      oldPrimary: s.view.lastLeaderLsn?.node ?? null,
      ms,
      forced: force,
      followers: others.filter(following),
      notFollowing: others.filter((n) => !following(n)),
    };
  } finally {
    await t.store.clearFailover().catch(() => undefined);
  }
}

/**
 * The replicas with a live agent as failover candidates, by the one rule the agents also go by
 * (failoverCandidate): never-promote marks, each agent's own problem, and the lag cap.
 */
export function candidatesIn(spec: ClusterSpec, s: HaState, ha: HaSpec, leader: string) {
  return spec.nodes.flatMap((n, specIndex) => {
    const m = s.members.get(n.name);
    if (n.name === leader || m?.role !== 'replica') return [];
    return [
      failoverCandidate({
        name: n.name,
        rules: { failoverPriority: n.failoverPriority, noFailover: n.noFailover, specIndex },
        problem: m.problem,
        positionLsn: m.lsn,
        replayLsn: m.replayLsn,
        lag: { bytes: m.lagBytes, cap: ha.maximumLagOnFailover },
      }),
    ];
  });
}

/** The most advanced replica with a live agent that may be promoted: the one comparator decides. */
function bestReplica(spec: ClusterSpec, s: HaState, ha: HaSpec, leader: string): string | undefined {
  return candidatesIn(spec, s, ha, leader)
    .filter((c) => c.problem === null)
    .sort(compareCandidates)[0]?.name;
}

/**
 * Reads the cluster's state until `done` accepts it, reading again when etcd reports a change after
 * the last read (or after a second without one). Polling every 20 ms, as this did, made this
 * process and etcd compete for the CPU with the servers and agents while they hand over.
 */
async function waitFor(
  t: HaTarget,
  spec: ClusterSpec,
  done: (s: HaState) => boolean,
  timeoutMs: number,
  what: string,
): Promise<HaState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await t.store.read();
    if (done(s)) return s;
    const left = deadline - Date.now();
    if (left <= 0)
      throw new PgreplError('E_TIMEOUT', `timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await changeAfter(t.store, s.revision, Math.min(left, 1000));
  }
}

/** Resolves at the first change under `prefix` after `revision`, or after `ms` (also when the watch fails). */
async function changeAfter(store: HaStore, revision: number, ms: number): Promise<void> {
  const over = new AbortController();
  const timer = setTimeout(() => over.abort(), ms);
  try {
    await store.watch(revision, over.signal, () => over.abort());
  } catch {
    // A watch etcd refused or broke: the next read says what is wrong, once the time is up.
  }
  if (!over.signal.aborted) await new Promise((r) => over.signal.addEventListener('abort', r));
  clearTimeout(timer);
}
