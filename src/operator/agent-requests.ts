import { PgreplError } from '../errors.js';
import { findNode } from '../cluster-spec/cluster-spec.js';
import type { ClusterSpec } from '../cluster-spec/cluster-spec.js';
import { sameSyncSet } from '../cluster/decide/decide-sync-set.js';
import { nodeOf, sqlOn } from '../cluster/context/node-sql.js';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { synchronousStandbyNames } from '../postgres/render-postgresql-conf.js';
import { askAgent, waitAgentGone } from './agent-client.js';
import type { NodeOperationResult } from '../ha/node-operation.js';
import { agentApiTls } from '../ha/ha-services.js';
import { waitFor } from './ha-target.js';
import type { HaTarget } from './ha-target.js';
import { switchoverThroughAgents } from './agent-failover.js';
import type { AgentSwitchover } from './agent-failover.js';
import { monotonicNow } from '../monotonic-now.js';

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
  const deadline = monotonicNow() + 20_000;
  const ended =
    record === undefined ||
    ((await waitFor(t, spec, (x) => !x.members.has(name), 20_000, `${name}'s agent to end`)
      .then(() => true)
      .catch(() => false)) &&
      (await waitAgentGone(
        record,
        findNode(spec, name)?.host ?? '',
        deadline - monotonicNow(),
        agentApiTls(spec),
      )));
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
  const deadline = monotonicNow() + timeoutMs;
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
    if (monotonicNow() > deadline)
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
