import { PgreplError } from '../errors.js';
import type { ClusterSpec, HaSpec } from '../cluster-spec/cluster-spec.js';
import { etcdClient } from '../dcs/etcd-client.js';
import type { EtcdClient } from '../dcs/etcd-client.js';
import { haStore } from '../dcs/ha-store.js';
import type { HaStore } from '../dcs/ha-store.js';
import type { HaState } from '../dcs/ha-values.js';
import { effectiveHa, etcdConnection } from '../ha/ha-services.js';
import { monotonicNow } from '../monotonic-now.js';

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
  const etcd = etcdClient({ ...etcdConnection(spec, ha, env), requestTimeoutMs: 2000 });
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
 * Reads the cluster's state until `done` accepts it, reading again when etcd reports a change after
 * the last read (or after a second without one). Polling every 20 ms, as this did, made this
 * process and etcd compete for the CPU with the servers and agents while they hand over.
 */
export async function waitFor(
  t: HaTarget,
  spec: ClusterSpec,
  done: (s: HaState) => boolean,
  timeoutMs: number,
  what: string,
): Promise<HaState> {
  const deadline = monotonicNow() + timeoutMs;
  for (;;) {
    const s = await t.store.read();
    if (done(s)) return s;
    const left = deadline - monotonicNow();
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
