import type { ClusterContext } from '../../cluster/context/cluster-context.js';
import { rankCandidates } from '../../cluster/decide/rank-candidates.js';
import type { HistoryEntry } from '../../cluster/store/cluster-store.js';
import { candidatesIn } from '../../operator/agent-failover.js';
import { readClusterStatus } from '../../operator/cluster-status.js';
import type { ClusterStatusRead } from '../../operator/cluster-status.js';
import { haTarget } from '../../operator/ha-target.js';

/** One replica as a failover would judge it now, best first: why it would not be promoted, or null. */
export interface CandidateRow {
  readonly node: string;
  readonly why: string | null;
  readonly positionLsn: string | null;
}

/** What the page shows at one moment: `status --json`, the candidates, the history. */
export interface DashboardView {
  readonly at: string;
  readonly cluster: string;
  readonly mode: string;
  readonly status: ClusterStatusRead['json'];
  /** Per node: the sentences of `status` about it (down, fenced, diverged, lagging…). */
  readonly nodeWarnings: Readonly<Record<string, readonly string[]>>;
  /** Empty without agents (no failover to judge). */
  readonly candidates: readonly CandidateRow[];
  /** Promotions, switchovers, rejoins and mode changes, newest first. */
  readonly history: readonly HistoryEntry[];
}

/** The most history entries a view carries: the page lists them, newest first. */
const HISTORY_SHOWN = 50;

/** The sentences of `status` that are about `node`: they start with its name. */
export function warningsOf(node: string, warnings: readonly string[]): string[] {
  return warnings.filter((w) => w === node || w.startsWith(`${node} `) || w.startsWith(`${node}:`));
}

/** Reads the cluster as `status` does, plus what the agents' etcd holds: candidates and history. */
export async function readDashboardView(ctx: ClusterContext): Promise<DashboardView> {
  const target = haTarget(ctx.spec, ctx.processEnv);
  const [read, fromStore, agents] = await Promise.all([
    readClusterStatus(ctx),
    ctx.store.readHistory().catch(() => []),
    target
      ? Promise.all([target.store.read(), target.store.readHistory<HistoryEntry>()]).catch(() => null)
      : null,
  ]);
  const [ha, fromAgents] = agents ?? [null, []];
  const leader = ha?.view.leader?.node;
  const ranked =
    target && ha && leader
      ? rankCandidates(candidatesIn(ctx.spec, ha, target.ha, leader)).map((c) => ({
          node: c.name,
          why: c.problem,
          positionLsn: c.positionLsn,
        }))
      : [];
  // The other nodes are no candidates at all; the page says why rather than leave them out.
  const others = ha
    ? ctx.spec.nodes
        .filter((n) => n.name !== leader && !ranked.some((c) => c.node === n.name))
        .map((n) => {
          const m = ha.members.get(n.name);
          return {
            node: n.name,
            why: m ? `it is no running replica (its server is ${m.role})` : 'its agent does not run',
            positionLsn: m?.lsn ?? null,
          };
        })
    : [];
  const candidates = leader ? [...ranked, ...others] : [];
  // An agent's own store is the agents' etcd too: the same entry may come from both.
  const unique = new Map([...fromStore, ...fromAgents].map((e) => [`${e.at} ${e.op} ${e.node}`, e]));
  const history = [...unique.values()].sort((a, b) => b.at.localeCompare(a.at)).slice(0, HISTORY_SHOWN);
  const { warnings } = read.status;
  return {
    at: new Date(ctx.clock.wallNow()).toISOString(),
    cluster: ctx.spec.cluster,
    mode: ctx.spec.replication.mode,
    status: read.json,
    nodeWarnings: Object.fromEntries(ctx.spec.nodes.map((n) => [n.name, warningsOf(n.name, warnings)])),
    candidates,
    history,
  };
}
