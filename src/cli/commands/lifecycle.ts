import { destroyCluster } from '../../cluster/operations/destroy-cluster.js';
import { nodeOf } from '../../cluster/context/node-sql.js';
import { removeNode } from '../../cluster/operations/remove-node.js';
import { exclusively } from '../../cluster/operations/exclusive.js';
import { reloadNodes, restartNodes } from '../../cluster/operations/restart-nodes.js';
import { stopCluster, stopOneNode } from '../../cluster/operations/stop-cluster.js';
import { PgreplError } from '../../errors.js';
import { changing, commandContext } from '../command-context.js';
import { currentLeader, effectiveHa, stopAgents, stopLocalEtcd } from '../../agent/ha-services.js';
import type { ClusterContext } from '../../cluster/context/cluster-context.js';
import { askAgent } from '../../agent/agent-client.js';
import type { NodeOperationResult } from '../../agent/agent-operations.js';
import { agentsRunning, removeThroughAgents, restartThroughAgents } from '../../agent/ha-commands.js';
import type { HaTarget } from '../../agent/ha-commands.js';
import type { GlobalOptions } from '../command-context.js';

/** `down`: stops every node, keeping all data. */
export async function runDown(g: GlobalOptions): Promise<number> {
  const ctx = await commandContext(g);
  const agents = await stopHa(ctx);
  const { stopped, elsewhere } = await changing(ctx, 'down', () => stopCluster(ctx, 'fast'), {
    allowInterrupted: true,
  });
  if (agents.length > 0) process.stdout.write(`stopped the agents of ${agents.join(', ')}\n`);
  process.stdout.write(
    stopped.length === 0
      ? `cluster ${ctx.spec.cluster}: nothing was running\n`
      : `stopped ${stopped.join(', ')}; data kept, \`pgrepl start\` resumes\n`,
  );
  if (elsewhere.length > 0)
    process.stdout.write(`not stopped: ${elsewhere.join(', ')} run on other hosts; stop them there\n`);
  return 0;
}

/**
 * Stops this machine's agents (the leader's last: it stops its server and gives up the key) and
 * the local etcd, before `down` or `destroy` stops the servers: an agent left running would start
 * them again.
 */
async function stopHa(ctx: ClusterContext): Promise<string[]> {
  const ha = effectiveHa(ctx.spec);
  if (!ha) return [];
  const stopped = await stopAgents(ctx.spec, await currentLeader(ctx.spec, ha));
  if (!ha.etcd) await stopLocalEtcd(ctx.spec);
  return stopped;
}

const printed = (json: boolean | undefined, value: object, text: string) =>
  process.stdout.write(
    json ? `${JSON.stringify({ ...value, throughAgents: true }, null, 2)}\n` : `${text}\n`,
  );

/** `stop NODE`: stops one node, keeping its data. */
export async function runStop(
  g: GlobalOptions,
  name: string,
  o: { immediate?: boolean; json?: boolean },
): Promise<number> {
  const ctx = await commandContext(g);
  nodeOf(ctx, name);
  const t = await agentsRunning(ctx.spec, ctx.processEnv);
  if (t) {
    const r = await askAgent<NodeOperationResult>(ctx.spec, t, name, '/stop', {
      mode: o.immediate ? 'immediate' : 'fast',
    });
    printed(
      o.json,
      r,
      r.pidBefore === null
        ? `${name} was not running; its agent now leaves it stopped until \`pgrepl start ${name}\``
        : `stopped ${name} through its agent, which leaves it stopped until \`pgrepl start ${name}\``,
    );
    return 0;
  }
  const r = await changing(ctx, 'stop', () => stopOneNode(ctx, name, o.immediate ? 'immediate' : 'fast'));
  process.stdout.write(
    !r.stopped
      ? `${name} was not running\n`
      : r.wasPrimary
        ? `stopped ${name}, the primary: writes are impossible until \`pgrepl start ${name}\` (or a promotion)\n`
        : `stopped ${name}; data kept, \`pgrepl start ${name}\` starts it again\n`,
  );
  return 0;
}

/** `restart [NODE] [--switchover]`: replicas first, then the primary in place or by a switchover. */
export async function runRestart(
  g: GlobalOptions,
  name: string | undefined,
  o: { switchover?: boolean; json?: boolean },
): Promise<number> {
  const ctx = await commandContext(g);
  if (name !== undefined) nodeOf(ctx, name);
  const t = await agentsRunning(ctx.spec, ctx.processEnv);
  if (t) {
    const r =
      name === undefined
        ? await restartThroughAgents(ctx.spec, t, { switchover: o.switchover === true })
        : {
            restarted: [await askAgent<NodeOperationResult>(ctx.spec, t, name, '/restart')],
            switchover: null,
          };
    const lines = r.restarted.map(
      (n) =>
        `restarted ${n.node} through its agent (${n.role}, pid ${n.pidBefore} → ${n.pidAfter}, ${n.ms} ms)`,
    );
    if (r.switchover)
      lines.push(
        `the primary role moved to ${r.switchover.newPrimary} in ${r.switchover.ms} ms; ${r.switchover.oldPrimary} restarted as its replica`,
      );
    printed(o.json, r, lines.join('\n') || 'no node runs; nothing restarted');
    return 0;
  }
  const r = await changing(ctx, 'restart', () =>
    restartNodes(ctx, { only: name, switchover: o.switchover === true }),
  );
  const lines = [
    r.restarted.length > 0 ? `restarted ${r.restarted.join(', ')}` : 'restarted no node in place',
  ];
  if (r.switchedTo)
    lines.push(`the primary role moved to ${r.switchedTo}; the old primary restarted as its replica`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/** `reload [NODE]`: the running nodes re-read postgresql.conf and pg_hba.conf. */
export async function runReload(g: GlobalOptions, name: string | undefined): Promise<number> {
  const ctx = await commandContext(g);
  if (name !== undefined) nodeOf(ctx, name);
  const t = await agentsRunning(ctx.spec, ctx.processEnv);
  const r = t
    ? await reloadThroughAgents(ctx, t, name)
    : await changing(ctx, 'reload', () => reloadNodes(ctx, name));
  const lines = [
    r.length > 0 ? `reloaded ${r.map((n) => n.node).join(', ')}` : 'no node runs; nothing reloaded',
  ];
  for (const n of r)
    if (n.pendingRestart.length > 0)
      lines.push(
        `${n.node}: ${n.pendingRestart.join(', ')} wait${n.pendingRestart.length === 1 ? 's' : ''} for a restart: \`pgrepl restart ${n.node}\``,
      );
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/** Each running node (or only `name`) re-reads its files through its own agent. */
async function reloadThroughAgents(ctx: ClusterContext, t: HaTarget, name: string | undefined) {
  const s = await t.store.read();
  const running = [...s.members.values()]
    .filter((m) => m.role === 'primary' || m.role === 'replica')
    .map((m) => m.node);
  const targets = name === undefined ? running : [name];
  const r: { node: string; pendingRestart: readonly string[] }[] = [];
  for (const n of targets) {
    const a = await askAgent<NodeOperationResult>(ctx.spec, t, n, '/reload');
    r.push({ node: a.node, pendingRestart: a.pendingRestart ?? [] });
  }
  return r;
}

/** `destroy --yes`: stops the nodes and deletes only what pgrepl created. */
export async function runDestroy(g: GlobalOptions, o: { yes?: boolean }): Promise<number> {
  const ctx = await commandContext(g);
  if (!o.yes) {
    throw new PgreplError(
      'E_CONFIRMATION_REQUIRED',
      `destroy deletes the data of cluster ${ctx.spec.cluster} (${ctx.spec.nodes.map((n) => n.dataDir).join(', ')}); ` +
        'run `pgrepl destroy --yes` if that is what you want',
    );
  }
  const agents = await stopHa(ctx);
  if (agents.length > 0) process.stdout.write(`stopped the agents of ${agents.join(', ')}\n`);
  const r = await changing(ctx, 'destroy', () => destroyCluster(ctx), { allowInterrupted: true });
  if (r.stopped.length > 0) process.stdout.write(`stopped ${r.stopped.join(', ')}\n`);
  for (const path of r.removed) process.stdout.write(`removed ${path}\n`);
  for (const path of r.kept) process.stdout.write(`kept ${path}: pgrepl did not create it\n`);
  for (const path of r.movedAside)
    process.stdout.write(
      `kept ${path}: an old copy a re-clone moved aside; \`pgrepl clean --yes\` removes it\n`,
    );
  return 0;
}

/** `remove NODE --yes [--delete-data]`: takes a replica out of the cluster and the spec. */
export async function runRemove(
  g: GlobalOptions,
  name: string,
  o: { yes?: boolean; deleteData?: boolean; json?: boolean },
): Promise<number> {
  const ctx = await commandContext(g);
  const node = nodeOf(ctx, name);
  if (!o.yes)
    throw new PgreplError(
      'E_CONFIRMATION_REQUIRED',
      `remove stops ${name}, drops its slot on the primary and takes it out of ${ctx.spec.source}; its data in ` +
        `${node.dataDir} is ${o.deleteData ? 'deleted' : 'kept'}. Run \`pgrepl remove ${name} --yes${o.deleteData ? ' --delete-data' : ''}\` if that is what you want`,
    );
  const t = await agentsRunning(ctx.spec, ctx.processEnv);
  const detach = (renderOthers: boolean) => async () =>
    (await removeNode(ctx, name, { deleteData: o.deleteData === true, renderOthers })).result;
  const agents = t
    ? await removeThroughAgents(ctx.spec, t, name, () => exclusively(ctx, 'remove', detach(false)))
    : null;
  const r = agents ? agents.removal : await changing(ctx, 'remove', detach(true));
  if (o.json) {
    const through = agents && { agentEnded: agents.agentEnded, syncSetNarrowed: agents.syncSetNarrowed };
    process.stdout.write(
      `${JSON.stringify(through ? { ...r, ...through, throughAgents: true } : r, null, 2)}\n`,
    );
    return 0;
  }
  const lines = [
    `removed ${name} from the cluster and from ${ctx.spec.source}${r.slotDropped ? '; its slot is dropped' : ''}`,
    r.keptDataDir ? `its data is kept in ${r.keptDataDir}` : 'its data directory is deleted',
  ];
  const touched = [...new Set((r.others?.steps ?? []).map((s) => s.node))];
  if (touched.length > 0)
    lines.push(`the other nodes no longer name it: ${touched.join(', ')} rewritten and reloaded`);
  if (agents)
    lines.push(
      `its agent ${agents.agentEnded ? 'ended' : 'did not end in 20 s: stop it on its host'}; the other agents render their nodes without it` +
        (agents.syncSetNarrowed === null
          ? ''
          : agents.syncSetNarrowed
            ? ', and the leader recorded the synchronous standbys without it'
            : '; the leader has not yet recorded the synchronous standbys without it (it waits for them to catch up)'),
    );
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
