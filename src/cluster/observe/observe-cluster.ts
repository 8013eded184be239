import { join } from 'node:path';
import { PgreplError } from '../../errors.js';
import { acceptsConnections } from '../../postgres/instance-control.js';
import {
  readInstanceState,
  readOwnTls,
  readRestartSettings,
  readRole,
  readSenders,
  readSlots,
  readUnappliedSettings,
  readWalReceiver,
} from '../../postgres/instance-queries.js';
import type { InstanceState } from '../../postgres/instance-queries.js';
import { parseLsn } from '../../postgres/lsn.js';
import { readReplayProgress } from '../../postgres/promotion.js';
import { verifierMatches } from '../../postgres/scram-verifier.js';
import { withSql } from '../../postgres/sql-client.js';
import type { SqlSession } from '../../postgres/sql-client.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import { adminTarget } from '../context/cluster-context.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { readState } from '../store/cluster-state.js';
import { checkDivergence } from './check-divergence.js';
import type { Divergence } from './wal-divergence.js';
import { diskOf } from './disk-of.js';
import { sqlOn } from '../context/node-sql.js';
import { localDir, onlyPrimary } from './observation.js';
import type { ClusterObservation, NodeObservation, ServerAnswer, ServerUnreachable } from './observation.js';

/** Observes every node in parallel: the data directory on disk, then the server over SQL. */
export async function observeCluster(ctx: ClusterContext): Promise<ClusterObservation> {
  // Which directories pgrepl created is a fact of this machine; who is fenced, of the cluster.
  const created = new Set(readState(ctx.spec.stateDir, ctx.spec.cluster).createdDirs);
  const fenced = await ctx.store.fencedNodes();
  const nodes = await Promise.all(
    ctx.spec.nodes.map((n) => observeNode(ctx, n, created, fenced.includes(n.name))),
  );
  return { at: ctx.clock.wallNow(), nodes: await withDivergence(ctx, nodes) };
}

/**
 * Checks every stopped node against the one primary that answers, so that `status` can flag and
 * `up`/`start` can leave stopped a node that wrote WAL of its own (checkDivergence).
 */
async function withDivergence(ctx: ClusterContext, nodes: NodeObservation[]): Promise<NodeObservation[]> {
  const primary = onlyPrimary(nodes);
  // Stopped with or without standby.signal: a node started by hand without it and stopped again
  // is the case that timelines alone miss.
  const stopped = nodes.filter((o) => o.server === null && localDir(o)?.initialized === true);
  if (!primary || stopped.length === 0) return nodes;
  const checked = new Map<string, Divergence>();
  try {
    await sqlOn(ctx, primary.node, async (s) => {
      for (const o of stopped) {
        const c = await checkDivergence(ctx, o.node, s).catch(() => null);
        if (c) checked.set(o.node.name, c.divergence);
      }
    });
  } catch {
    // the primary stopped answering meanwhile: nothing checked
  }
  return nodes.map((o) => ({ ...o, divergence: checked.get(o.node.name) ?? null }));
}

async function observeNode(
  ctx: ClusterContext,
  node: NodeSpec,
  created: Set<string>,
  fenced: boolean,
): Promise<NodeObservation> {
  const dataDir = diskOf(ctx, node).readDisk((dir) => created.has(dir));
  const common = { node, fenced, divergence: null, dataDir };
  // Another host's disk is not ours to read: what that node is comes from its answer alone.
  if (!dataDir.local) return { ...common, server: await askServer(ctx, node), serverOutsideDataDir: false };
  // A server that answers on the address but is not this directory's (moved, or another one on the
  // port) must still be seen: ignoring it is how a failover would make a second primary.
  const serverOutsideDataDir = dataDir.pid === null && (await acceptsConnections(node.host, node.port, 500));
  return {
    ...common,
    server: dataDir.pid === null && !serverOutsideDataDir ? null : await askServer(ctx, node),
    serverOutsideDataDir,
  };
}

async function askServer(ctx: ClusterContext, node: NodeSpec): Promise<ServerAnswer | ServerUnreachable> {
  const target = adminTarget(ctx, node);
  if (!target)
    return {
      ok: false,
      error:
        ctx.secretErrors.superuser?.message ??
        'no superuser password in the state dir (was this cluster made by pgrepl?)',
    };
  try {
    return await withSql(target, async (s) => {
      const instance = await readInstanceState(s);
      const readAt = ctx.clock.now();
      const primary = !instance.inRecovery;
      const role = primary ? await readRole(s, ctx.spec.replication.user) : null;
      const restart = await readRestartSettings(s);
      const answer = {
        ok: true as const,
        instance,
        walReceiver: primary ? null : await readWalReceiver(s),
        senders: primary ? await readSenders(s) : [],
        slots: await readSlots(s),
        replicationRoleExists: primary ? role?.loginReplication === true : null,
        replicationPasswordMatches:
          primary && ctx.replicationPassword !== undefined
            ? verifierMatches(ctx.replicationPassword, role?.verifier ?? null)
            : null,
        unappliedSettings: await readUnappliedSettings(s, join(node.dataDir, 'postgresql.conf')),
        pendingRestart: restart.pending,
        restartOnlySettings: restart.restartOnly,
        ownTls: await readOwnTls(s),
      };
      return { ...answer, replayMoving: primary ? null : await replayMoving(ctx, s, instance, readAt) };
    });
  } catch (thrown) {
    // The driver's own words ("connect ECONNREFUSED …"): status adds what to do itself.
    const err = thrown instanceof PgreplError && thrown.cause instanceof Error ? thrown.cause : thrown;
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Whether a replica's replay, short of what it received, moves: looked at again every 10 ms, and
 * answered as soon as it moves (a healthy replica replays within milliseconds, so a failover waits
 * for nothing), or false once `timeouts.replayWatchMs` passed since the first look. null when it
 * has replayed all it received (nothing to watch).
 */
async function replayMoving(
  ctx: ClusterContext,
  s: SqlSession,
  first: InstanceState,
  firstAt: number,
): Promise<boolean | null> {
  const { receiveLsn, replayLsn } = first;
  if (receiveLsn === null || replayLsn === null || parseLsn(replayLsn) >= parseLsn(receiveLsn)) return null;
  while (ctx.clock.now() < firstAt + ctx.timeouts.replayWatchMs) {
    await ctx.clock.sleep(10, ctx.abort);
    const now = (await readReplayProgress(s)).replay;
    if (now !== null && parseLsn(now) > parseLsn(replayLsn)) return true;
  }
  return false;
}
