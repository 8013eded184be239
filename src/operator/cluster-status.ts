import { observeCluster } from '../cluster/observe/observe-cluster.js';
import { buildStatus } from '../cluster/decide/status-report.js';
import type { ClusterStatus } from '../cluster/decide/status-report.js';
import { certStatus } from '../cluster/decide/plan-certs.js';
import { readCertsOf, readOwnCerts } from '../cluster/actions/node-certs.js';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { readHaStatus } from './ha-status.js';
import type { HaStatus } from './ha-status.js';

/** The cluster as `status` shows it: every node's server, the certificates, and the agents in etcd. */
export interface ClusterStatusRead {
  /** The nodes' table and its sentences; `healthy` counts the agents' etcd and leader too. */
  readonly status: ClusterStatus;
  /** What etcd says of the agents; undefined when HA is off. */
  readonly ha: HaStatus | undefined;
  /** What `status --json` prints (without the PostgreSQL version): each node with its agent. */
  readonly json: ClusterStatus & { ha?: object };
}

export async function readClusterStatus(ctx: ClusterContext): Promise<ClusterStatusRead> {
  const [obs, journal, ha] = await Promise.all([
    observeCluster(ctx),
    ctx.store.readJournal(),
    readHaStatus(ctx.spec, ctx.processEnv),
  ]);
  const status = buildStatus(ctx.spec, obs, journal);
  if (ctx.spec.tls !== 'off') {
    const read = ctx.spec.tls === 'auto' ? readCertsOf(ctx, [...ctx.localNodes]) : readOwnCerts(ctx);
    const certs = certStatus(ctx.spec, read, ctx.localNodes, ctx.clock.wallNow());
    status.warnings.push(...certs.warnings);
    status.notes.push(...certs.notes);
    if (certs.warnings.length > 0) status.healthy = false;
  }
  if (ha?.error) status.warnings.push(`the agents' etcd does not answer: ${ha.error}`);
  else if (ha && ha.leader === null) status.warnings.push('no agent holds the leader key');
  const healthy = status.healthy && !ha?.error && (ha === undefined || ha.leader !== null);
  const json = ha
    ? {
        ...status,
        healthy,
        nodes: status.nodes.map((n) => ({ ...n, agent: ha.agents[n.name] ?? null })),
        ha: {
          etcd: ha.etcd,
          leader: ha.leader,
          leaseSecondsLeft: ha.leaseSecondsLeft,
          paused: ha.paused,
          synchronous: ha.synchronous,
        },
      }
    : { ...status, healthy };
  return { status: { ...status, healthy }, ha, json };
}
