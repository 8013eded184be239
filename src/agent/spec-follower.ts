import { statSync } from 'node:fs';
import { PgreplError } from '../errors.js';
import type { KeptSession } from '../postgres/sql-client.js';
import type { NodeSpec } from '../cluster-spec/cluster-spec.js';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { nodeOf } from '../cluster/context/node-sql.js';
import { renderPrimary, repoint, syncSettingTakenAt } from '../cluster/actions/topology-actions.js';
import { decideSyncSet } from '../cluster/decide/decide-sync-set.js';
import type { HaStore } from '../dcs/ha-store.js';
import type { HaState, LeaderSyncSet, SyncSet } from '../dcs/ha-values.js';
import type { SelfObservation } from './observe-self.js';

/** What the spec follower needs of its agent. */
export interface SpecFollowerHost {
  readonly ctx: ClusterContext;
  readonly node: NodeSpec;
  readonly reload: (() => Promise<ClusterContext>) | undefined;
  readonly store: HaStore;
  readonly session: KeptSession;
  readonly leaseId: string;
  /** What the agent's server was at its last loop. */
  readonly localKind: SelfObservation['local']['kind'] | undefined;
  /** What etcd said last. */
  readonly lastRead: HaState | null;
  /** The agent acts on this context and node from now on. */
  adopt(ctx: ClusterContext, node: NodeSpec): void;
  retire(why: string): void;
  oneAtATime<T>(fn: () => Promise<T>): Promise<T>;
  failed(during: string, err: unknown): void;
}

/**
 * The agent's side of spec changes: it re-reads the spec file when it changed (a node removed, a new
 * replication mode), renders its own node anew, and keeps the synchronous set in etcd in step with
 * the server's setting, in the order decideSyncSet gives.
 */
export class SpecFollower {
  /** The spec file's mtime and size when it was last taken. */
  private stamp: string | null;
  /**
   * The leader's WAL position once its server ran the synchronous_standby_names of the spec it took
   * last (decideSyncSet); null until it has taken one.
   */
  private syncTakenAt: string | null = null;
  /** The follow under way, which a second caller waits for. */
  private following: Promise<void> | null = null;

  constructor(private readonly h: SpecFollowerHost) {
    this.stamp = stampOf(h.ctx.spec.source);
  }

  /**
   * Re-reads the spec when its file changed: a node that left it retires the agent; otherwise the
   * agent acts on the new spec from now on, and renders its own node's files anew (pg_hba,
   * synchronous_standby_names), which its server re-reads at once.
   */
  follow(): Promise<void> {
    // One at a time, and a caller during one waits for it: it returns once the node is rendered.
    this.following ??= this.followOnce().finally(() => {
      this.following = null;
    });
    return this.following;
  }

  private async followOnce(): Promise<void> {
    const { h } = this;
    const stamp = stampOf(h.ctx.spec.source);
    if (!h.reload || stamp === null || stamp === this.stamp) return;
    this.stamp = stamp;
    let ctx: ClusterContext;
    try {
      ctx = await h.reload();
    } catch (err) {
      h.failed('re-reading the spec (the agent goes on with the one it has)', err);
      return;
    }
    const node = ctx.spec.nodes.find((n) => n.name === h.node.name);
    if (!node) {
      h.retire(`${h.node.name} is no longer in ${ctx.spec.source}: the agent stops`);
      return;
    }
    h.adopt(ctx, node);
    ctx.events.emit({
      event: 'note',
      message: `agent of ${node.name}: ${ctx.spec.source} changed; acting on it`,
    });
    const local = h.localKind;
    const leader = h.lastRead?.view.leader?.node;
    try {
      await h.oneAtATime(async () => {
        if (local === 'primary') {
          await this.recordBefore();
          await renderPrimary(ctx, node);
          this.syncTakenAt = await h.session.use((q) => syncSettingTakenAt(ctx, node, q));
        } else if (local === 'replica' && leader && leader !== node.name)
          await repoint(ctx, node, nodeOf(ctx, leader));
      });
    } catch (err) {
      h.failed('rendering the node for the new spec', err);
      // Not done: the next loop takes the spec again.
      this.stamp = null;
    }
  }

  /** The leader records the synchronous standbys of its spec once it is safe (decideSyncSet). */
  async followSyncSet(s: HaState, self: SelfObservation): Promise<void> {
    const { h } = this;
    if (h.ctx.spec.replication.mode === 'async') return;
    const d = decideSyncSet({
      recorded: s.view.sync,
      desired: this.syncSet(),
      takenAt: this.syncTakenAt,
      flushed: self.flushed,
    });
    if (d.kind !== 'record' || !(await h.store.recordSyncSet(h.leaseId, { ...d.set, leader: h.node.name })))
      return;
    h.ctx.events.emit({
      event: 'note',
      message: `agent of ${h.node.name}: synchronous standbys recorded: ${d.reason}`,
    });
  }

  /**
   * The standbys a new leader records as those that may acknowledge commits (every other node, as
   * its synchronous_standby_names lists them): none in async mode.
   */
  syncSetToRecord(): LeaderSyncSet | null {
    return this.h.ctx.spec.replication.mode === 'async'
      ? null
      : { ...this.syncSet(), leader: this.h.node.name };
  }

  /**
   * Before the server is told of the spec just taken: records a synchronous set that asks at least
   * as much of a candidate as the recorded one (or a bridge over both), so that a failover never
   * judges candidates by a record that asks less than the setting in force (decideSyncSet). One
   * that asks less is recorded after, once it is safe (followSyncSet).
   */
  private async recordBefore(): Promise<void> {
    const { h } = this;
    if (h.ctx.spec.replication.mode === 'async') return;
    const d = decideSyncSet({
      recorded: h.lastRead?.view.sync ?? null,
      desired: this.syncSet(),
      takenAt: null,
      flushed: new Map(),
    });
    if (d.kind === 'record' && !(await h.store.recordSyncSet(h.leaseId, { ...d.set, leader: h.node.name })))
      throw new PgreplError('E_NOT_LEADER', 'the leader key is no longer on my lease: the spec waits');
  }

  private syncSet(): SyncSet {
    const { ctx, node } = this.h;
    const standbys = ctx.spec.nodes.filter((n) => n.name !== node.name).map((n) => n.name);
    return { count: ctx.spec.replication.syncCount, standbys };
  }
}

/** The spec file's mtime and size; null when there is no file (the embedded default). */
function stampOf(file: string): string | null {
  try {
    const st = statSync(file);
    return `${st.mtimeMs}:${st.size}`;
  } catch {
    return null;
  }
}
