import type { ClusterSpec, NodeSpec } from '../../cluster-spec/cluster-spec.js';
import { roleOf } from '../observe/observation.js';
import type { ClusterObservation, LocalDataDir, NodeObservation } from '../observe/observation.js';
import type { Plan, Step } from './plan-step.js';
import { renderNodeConfig } from './render-node-config.js';
import type { RenderFacts } from './render-node-config.js';
import { changedSettings } from './conf-settings.js';
import { topologyGuard } from './topology-guard.js';

export interface PlanOptions {
  /** `up` creates missing nodes; `start` only starts what exists. */
  readonly create: boolean;
  /** `start NODE`: only the steps of that node (and its slot on the primary). */
  readonly only?: string;
  /**
   * How a running primary is restarted for a setting: in place (the default: writes stop for the
   * restart), or through a switchover to a streaming replica when there is one (writes wait for
   * the switchover only; the primary role moves).
   */
  readonly restartPrimary?: 'in-place' | 'switchover';
}

/** A node read on this machine: `up` and `start` make, start and configure only such nodes. */
type LocalNode = NodeObservation & { readonly dataDir: LocalDataDir };
interface LocalObservation extends ClusterObservation {
  readonly nodes: readonly LocalNode[];
}

const allLocal = (obs: ClusterObservation): obs is LocalObservation =>
  obs.nodes.every((o) => o.dataDir.local);

/**
 * Decides what takes the observed cluster to the spec. Pure: the same observation gives the same
 * plan, and a cluster that already matches gives no steps.
 */
export function planUp(
  spec: ClusterSpec,
  observed: ClusterObservation,
  facts: RenderFacts,
  opts: PlanOptions,
): Plan {
  const guard = topologyGuard(observed, { actsOn: 'all' });
  if (guard) return { primary: null, steps: [], notes: [], refusal: guard };
  // The guard refuses a node of another host, so every node here was read on this machine.
  if (!allLocal(observed)) throw new Error('topologyGuard let a node of another host through');
  const obs = observed;
  const byName = new Map(obs.nodes.map((o) => [o.node.name, o]));
  // pgrepl rewrites the configuration of the directories it manages; one it did not create is
  // someone's own cluster, and its postgresql.conf and pg_hba.conf are theirs.
  const adopted = obs.nodes.find((o) => o.dataDir.initialized && !o.dataDir.createdByPgrepl);
  if (adopted) return foreignDir(adopted.node, 'cluster');
  const found = choosePrimary(spec, obs);
  if ('refusal' in found) return { primary: null, steps: [], notes: [], refusal: found.refusal };
  const primary = found.primary;
  const p = byName.get(primary.name);
  if (!p) throw new Error(`no observation for ${primary.name}`);
  const steps: Step[] = [];
  const notes: string[] = [];
  let primaryRestart: Step | null = null;
  const primaryRunning = p.server?.ok === true;

  if (!p.dataDir.initialized) {
    if (!opts.create)
      return {
        primary: primary.name,
        steps,
        notes: [`${primary.name} has no data; \`pgrepl up\` creates it`],
        refusal: null,
      };
    if (p.dataDir.foreignContent && !p.dataDir.createdByPgrepl) return foreignDir(primary, 'files');
    steps.push({
      kind: 'init-primary',
      node: primary.name,
      reason: `no node has data yet; ${primary.name} is the first node of the spec`,
    });
  } else {
    const own = configAndRun(spec, facts, p, undefined);
    steps.push(...own.steps);
    primaryRestart = own.restart;
  }
  const passwordChanged = p.server?.ok === true && p.server.replicationPasswordMatches === false;
  if (passwordChanged && !opts.create) {
    notes.push(
      `the replication password is not the one role ${spec.replication.user} has; the replicas keep the old one ` +
        'until `pgrepl up` gives the role the new one',
    );
  } else if (p.server?.ok !== true || p.server.replicationRoleExists !== true || passwordChanged) {
    steps.push({
      kind: 'ensure-replication-role',
      node: primary.name,
      reason: !primaryRunning
        ? `${primary.name} is not running yet`
        : passwordChanged
          ? `the replication password changed: the role gets it before the replicas' passfile does`
          : `role ${spec.replication.user} is missing`,
    });
  }
  const slots = new Set(p.server?.ok ? p.server.slots.map((s) => s.name) : []);
  const streaming = new Set(
    p.server?.ok ? p.server.senders.filter((s) => s.state === 'streaming').map((s) => s.applicationName) : [],
  );

  const clones: Step[] = [];
  const starts: Step[] = [];
  const waits: Step[] = [];
  const restarts: Step[] = [];
  const streamers: string[] = [];
  for (const replica of spec.nodes.filter((n) => n.name !== primary.name)) {
    const r = byName.get(replica.name);
    if (!r) continue;
    if (r.fenced && r.server === null) {
      notes.push(
        `${replica.name} was fenced by a failover and stays stopped; \`pgrepl rejoin ${replica.name}\` brings it back as a replica`,
      );
      continue;
    }
    if (r.divergence?.kind === 'diverged') {
      notes.push(divergedNotStarted(replica.name, primary.name, r.divergence.reason, 'was left stopped'));
      continue;
    }
    // Its slot lost WAL it needs: started, it could only wait for what is gone (a re-clone helps).
    const lost =
      p.server?.ok && p.server.slots.some((sl) => sl.name === replica.name && sl.walStatus === 'lost');
    if (lost && r.server === null) {
      notes.push(
        `${replica.name} stays stopped: its slot on ${primary.name} lost WAL it needs, so it could never stream; ` +
          `\`pgrepl rejoin ${replica.name}\` re-clones it`,
      );
      continue;
    }
    if (r.dataDir.initialized && !r.dataDir.standbySignal) {
      notes.push(
        `${replica.name} holds a primary's data but ${primary.name} is the primary; it was left stopped ` +
          `and must be rejoined (\`pgrepl rejoin ${replica.name}\`) before it can stream (never two primaries)`,
      );
      continue;
    }
    if (!r.dataDir.initialized && !opts.create) {
      notes.push(`${replica.name} has no data; \`pgrepl up\` clones it`);
      continue;
    }
    if (!r.dataDir.initialized && r.dataDir.foreignContent && !r.dataDir.createdByPgrepl)
      return foreignDir(replica, 'files');
    if (!slots.has(replica.name)) {
      steps.push({
        kind: 'create-slot',
        node: primary.name,
        slot: replica.name,
        reason: `${replica.name} needs its slot before it clones or streams`,
      });
    }
    if (!r.dataDir.initialized) {
      const why = r.dataDir.cloneLeftover
        ? 'an earlier clone was interrupted; its leftovers are removed first'
        : 'it has no data yet';
      clones.push({ kind: 'clone', node: replica.name, upstream: primary.name, reason: why });
      starts.push({
        kind: 'start',
        node: replica.name,
        upstream: primary.name,
        reason: `${replica.name} was just cloned`,
      });
    } else {
      const own = configAndRun(spec, facts, r, primary);
      steps.push(...own.steps);
      if (own.restart) restarts.push(own.restart);
    }
    streamers.push(replica.name);
    if (!streaming.has(replica.name)) {
      waits.push({
        kind: 'wait-streaming',
        node: replica.name,
        upstream: primary.name,
        reason: `${replica.name} is not streaming yet`,
      });
    }
  }
  // Replicas restart before the primary: a standby refuses to run with a lower max_connections,
  // max_wal_senders, ... than its primary, so a raise must reach the replicas first.
  const target = streamers[0];
  if (primaryRestart && opts.restartPrimary === 'switchover' && target !== undefined)
    restarts.push({
      kind: 'switchover',
      node: primary.name,
      to: target,
      reason: `${primaryRestart.reason}; through a switchover, so that writes wait only for it`,
    });
  else if (primaryRestart) {
    restarts.push(primaryRestart);
    // The replicas reconnect to the restarted primary on their own; `up` is done once they have.
    for (const name of streamers)
      restarts.push({
        kind: 'wait-streaming',
        node: name,
        upstream: primary.name,
        reason: `${primary.name} restarted`,
      });
  }
  const all = [...steps, ...clones, ...starts, ...waits, ...restarts];
  if (opts.only === undefined) return { primary: primary.name, steps: all, notes, refusal: null };
  return {
    primary: primary.name,
    ...onlyNode(all, notes, opts.only, primary.name, primaryRunning),
    refusal: null,
  };
}

/**
 * The part of a plan that concerns one node. A replica whose primary neither runs nor is started
 * here is started without waiting for it to stream: it will once the primary runs.
 */
function onlyNode(
  all: readonly Step[],
  notes: readonly string[],
  name: string,
  primary: string,
  primaryRunning: boolean,
): { steps: Step[]; notes: string[] } {
  const mine = all.filter((s) => s.node === name || (s.kind === 'create-slot' && s.slot === name));
  const own = notes.filter((n) => n.startsWith(`${name} `));
  const primaryComes = primaryRunning || mine.some((s) => s.node === primary && s.kind === 'start');
  if (primaryComes) return { steps: mine, notes: own };
  return {
    steps: mine.filter((s) => s.kind !== 'wait-streaming' && s.kind !== 'create-slot'),
    notes: [...own, `${name} streams once ${primary}, the primary, runs: \`pgrepl start ${primary}\``],
  };
}

/**
 * Steps that bring an existing node's files and process in line: rewrite (a running server reloads),
 * then a start of a stopped one, or a planned restart of a running one whose new configuration
 * changes a setting that takes effect only at a restart (or that still waits for one).
 */
function configAndRun(
  spec: ClusterSpec,
  facts: RenderFacts,
  o: LocalNode,
  upstream: NodeSpec | undefined,
): { steps: Step[]; restart: Step | null } {
  const want = renderNodeConfig(spec, facts, o.node, upstream);
  const steps: Step[] = [];
  const { files } = o.dataDir;
  const stale = files.postgresqlConf !== want.postgresqlConf || files.pgHba !== want.pgHba;
  if (stale) {
    steps.push({
      kind: 'write-config',
      node: o.node.name,
      upstream: upstream?.name ?? null,
      reason: 'its configuration differs from what the spec renders',
    });
  }
  if (o.server === null) {
    steps.push({
      kind: 'start',
      node: o.node.name,
      upstream: upstream?.name ?? null,
      reason: `${o.node.name} is stopped`,
    });
    return { steps, restart: null };
  }
  if (!o.server.ok) return { steps, restart: null };
  const restartOnly = new Set(o.server.restartOnlySettings);
  const changing = changedSettings(files.postgresqlConf, want.postgresqlConf).filter((n) =>
    restartOnly.has(n),
  );
  const pending = o.server.pendingRestart.filter((n) => !changing.includes(n));
  const why = [
    ...(changing.length > 0
      ? [`${changing.join(', ')} change${changing.length === 1 ? 's' : ''} only at a restart`]
      : []),
    ...(pending.length > 0 ? [`settings wait for a restart: ${pending.join(', ')}`] : []),
  ];
  return {
    steps,
    restart: why.length === 0 ? null : { kind: 'restart', node: o.node.name, reason: why.join('; ') },
  };
}

type PrimaryChoice = { primary: NodeSpec } | { refusal: NonNullable<Plan['refusal']> };

/**
 * The primary is what the servers say, then what the data directories say, then the spec's first
 * node. Called past topologyGuard: at most one node accepts writes.
 */
function choosePrimary(spec: ClusterSpec, obs: LocalObservation): PrimaryChoice {
  const [onlyWritable] = obs.nodes.filter((o) => roleOf(o) === 'primary');
  if (onlyWritable) return { primary: onlyWritable.node };
  const unreachable = obs.nodes.filter((o) => roleOf(o) === 'unreachable' && !o.dataDir.standbySignal);
  const [firstUnreachable] = unreachable;
  if (firstUnreachable && firstUnreachable.server?.ok === false) {
    return {
      refusal: {
        code: 'E_PRIMARY_UNREACHABLE',
        reason: `${firstUnreachable.node.name} runs but does not answer (${firstUnreachable.server.error}); fix that first`,
      },
    };
  }
  // A fenced former primary never counts: it comes back only through rejoin.
  const stoppedPrimaries = obs.nodes.filter(
    (o) => o.dataDir.initialized && !o.dataDir.standbySignal && !o.fenced,
  );
  if (stoppedPrimaries.length > 1) {
    return {
      refusal: {
        code: 'E_TWO_PRIMARIES',
        reason: `${stoppedPrimaries.map((o) => o.node.name).join(' and ')} all hold a primary's data; pgrepl will not start two primaries`,
      },
    };
  }
  const [onlyStopped] = stoppedPrimaries;
  if (onlyStopped) return { primary: onlyStopped.node };
  if (obs.nodes.some((o) => o.dataDir.initialized)) {
    return {
      refusal: {
        code: 'E_NO_PRIMARY',
        reason: 'every node with data is a replica and none is a primary; promote one first',
      },
    };
  }
  const first = spec.nodes[0];
  if (!first) return { refusal: { code: 'E_NO_PRIMARY', reason: 'the spec has no nodes' } };
  return { primary: first };
}

/** A plan that refuses to touch a data directory pgrepl did not create. */
function foreignDir(node: NodeSpec, what: 'cluster' | 'files'): Plan {
  const why =
    what === 'cluster'
      ? 'holds a PostgreSQL cluster that pgrepl did not create; pgrepl would rewrite its postgresql.conf and ' +
        'pg_hba.conf, so it leaves it alone. Give the node an empty or new dataDir'
      : 'holds files that are not PostgreSQL data and that pgrepl did not create; empty it or pick another dataDir';
  return {
    primary: null,
    steps: [],
    notes: [],
    refusal: { code: 'E_DATA_DIR_FOREIGN', reason: `${node.dataDir} (node ${node.name}) ${why}` },
  };
}

/** What `up` and `start` say of a diverged node they did not start, and what to do about it. */
export function divergedNotStarted(
  node: string,
  upstream: string,
  reason: string,
  how: 'was left stopped' | 'was not started',
): string {
  return (
    `${node} diverged from ${upstream}: ${reason}. It ${how} (streaming would replay ${upstream}'s WAL over ` +
    `its own writes); \`pgrepl rejoin ${node}\` re-clones it and lists what only it had`
  );
}
