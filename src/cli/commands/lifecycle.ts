import { destroyCluster } from '../../cluster/operations/destroy-cluster.js';
import { nodeOf } from '../../cluster/context/node-sql.js';
import { stopCluster } from '../../cluster/operations/stop-cluster.js';
import { PgreplError } from '../../errors.js';
import { changing, commandContext, jsonResult, topologyOf } from '../command-context.js';
import { currentLeader, effectiveHa, stopAgents, stopLocalEtcd } from '../../ha/ha-services.js';
import type { ClusterContext } from '../../cluster/context/cluster-context.js';
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

/** `stop NODE`: stops one node, keeping its data. */
export async function runStop(
  g: GlobalOptions,
  name: string,
  o: { immediate?: boolean; json?: boolean },
): Promise<number> {
  const ctx = await commandContext(g);
  nodeOf(ctx, name);
  const r = await (await topologyOf(ctx)).stop(name, o.immediate ? 'immediate' : 'fast');
  process.stdout.write(
    o.json
      ? jsonResult(r)
      : r.via === 'agents'
        ? r.pidBefore === null
          ? `${name} was not running; its agent now leaves it stopped until \`pgrepl start ${name}\`\n`
          : `stopped ${name} through its agent, which leaves it stopped until \`pgrepl start ${name}\`\n`
        : !r.stopped
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
  const r = await (await topologyOf(ctx)).restart({ only: name, switchover: o.switchover === true });
  if (o.json) {
    process.stdout.write(jsonResult(r));
    return 0;
  }
  const lines: string[] = [];
  if (r.via === 'agents') {
    for (const n of r.restarted)
      lines.push(
        `restarted ${n.node} through its agent (${n.role}, pid ${n.pidBefore} → ${n.pidAfter}, ${n.ms} ms)`,
      );
    if (r.switchover)
      lines.push(
        `the primary role moved to ${r.switchover.newPrimary} in ${r.switchover.ms} ms; ${r.switchover.oldPrimary} restarted as its replica`,
      );
    if (lines.length === 0) lines.push('no node runs; nothing restarted');
  } else {
    lines.push(r.restarted.length > 0 ? `restarted ${r.restarted.join(', ')}` : 'restarted no node in place');
    if (r.switchedTo)
      lines.push(`the primary role moved to ${r.switchedTo}; the old primary restarted as its replica`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/** `reload [NODE]`: the running nodes re-read postgresql.conf and pg_hba.conf. */
export async function runReload(g: GlobalOptions, name: string | undefined): Promise<number> {
  const ctx = await commandContext(g);
  if (name !== undefined) nodeOf(ctx, name);
  const r = await (await topologyOf(ctx)).reload(name);
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

/** `destroy --yes`: stops the nodes and deletes only what pgrepl created. */
export async function runDestroy(
  g: GlobalOptions,
  o: { yes?: boolean; withBackups?: boolean },
): Promise<number> {
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
  const r = await changing(
    ctx,
    'destroy',
    () => destroyCluster(ctx, { withBackups: o.withBackups === true }),
    {
      allowInterrupted: true,
    },
  );
  if (r.stopped.length > 0) process.stdout.write(`stopped ${r.stopped.join(', ')}\n`);
  for (const path of r.removed) process.stdout.write(`removed ${path}\n`);
  for (const path of r.kept) process.stdout.write(`kept ${path}: pgrepl did not create it\n`);
  for (const path of r.movedAside)
    process.stdout.write(
      `kept ${path}: an old copy a re-clone moved aside; \`pgrepl clean --yes\` removes it\n`,
    );
  if (r.keptBackups)
    process.stdout.write(
      `kept the backups in ${r.keptBackups} (stanza ${ctx.spec.cluster}): \`pgrepl destroy --yes --with-backups\` deletes them; ` +
        'a new cluster of this name refuses to archive into them\n',
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
  const r = await (await topologyOf(ctx)).remove(name, o.deleteData === true);
  if (o.json) {
    const { removal, ...through } = r;
    process.stdout.write(jsonResult({ ...removal, ...through }));
    return 0;
  }
  const lines = [
    `removed ${name} from the cluster and from ${ctx.spec.source}${r.removal.slotDropped ? '; its slot is dropped' : ''}`,
    r.removal.keptDataDir ? `its data is kept in ${r.removal.keptDataDir}` : 'its data directory is deleted',
  ];
  const touched = [...new Set((r.removal.others?.steps ?? []).map((s) => s.node))];
  if (touched.length > 0)
    lines.push(`the other nodes no longer name it: ${touched.join(', ')} rewritten and reloaded`);
  if (r.via === 'agents')
    lines.push(
      `its agent ${r.agentEnded ? 'ended' : 'did not end in 20 s: stop it on its host'}; the other agents render their nodes without it` +
        (r.syncSetNarrowed === null
          ? ''
          : r.syncSetNarrowed
            ? ', and the leader recorded the synchronous standbys without it'
            : '; the leader has not yet recorded the synchronous standbys without it (it waits for them to catch up)'),
    );
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
