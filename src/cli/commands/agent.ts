import { logicalKeeper } from '../../agent/logical-keeper.js';
import { Agent } from '../../agent/agent-loop.js';
import { startAgentApi } from '../../agent/agent-api.js';
import { agentContext } from '../../agent/agent-context.js';
import { agentOperations } from '../../agent/agent-operations.js';
import { readApiToken } from '../../ha/api-token.js';
import { failoverThroughAgents, switchoverThroughAgents } from '../../operator/agent-failover.js';
import { pauseAgents } from '../../operator/agent-requests.js';
import { failsafePeers } from '../../agent/failsafe-peers.js';
import { backupScheduler } from '../../agent/backup-scheduler.js';
import { seriesRecorder } from '../../agent/dashboard/series-recorder.js';
import { fenceLink } from '../../agent/fence-link.js';
import {
  agentApiAddress,
  agentApiTls,
  agentApiUrl,
  effectiveHa,
  etcdConnection,
  haPaths,
} from '../../ha/ha-services.js';
import { nodeOf } from '../../cluster/context/node-sql.js';
import { hostOf } from '../../cluster/context/cluster-context.js';
import { describeEvent } from '../describe-event.js';
import type { EventSink } from '../../cluster/context/events.js';
import { etcdClient } from '../../dcs/etcd-client.js';
import { haStore } from '../../dcs/ha-store.js';
import { PgreplError } from '../../errors.js';
import { commandContext, eventOutput } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';
import { asChanging, interruptSignal } from '../process-signals.js';

/** Human agent logs carry the time: they are read long after, from a file. */
function agentEvents(g: GlobalOptions): EventSink {
  if (g.logFormat === 'json') return eventOutput(g);
  return { emit: (e) => process.stderr.write(`${new Date().toISOString()} ${describeEvent(e)}\n`) };
}

/** `agent --node NAME`: runs the HA loop and the HTTP API of one node of this machine until SIGTERM. */
export async function runAgent(g: GlobalOptions, o: { node: string }): Promise<number> {
  const base = await commandContext(g);
  const ha = effectiveHa(base.spec);
  if (!ha)
    throw new PgreplError(
      'E_USAGE',
      `${base.spec.source} has no ha section and \`pgrepl up --ha\` was not run: there is nothing for an agent to do`,
    );
  const node = nodeOf(base, o.node);
  const etcd = etcdClient({
    ...etcdConnection(base.spec, ha, base.processEnv),
    requestTimeoutMs: ha.retryTimeoutMs,
  });
  const ctx = agentContext({ ...base, events: agentEvents(g) }, node, etcd);
  const paths = haPaths(ctx.spec.stateDir);
  const trace = base.processEnv['PGREPL_AGENT_TRACE'] === '1';
  const fence = fenceLink(
    {
      file: paths.fenceFile(node.name),
      pidFile: paths.watchdogPid(node.name),
      logFile: paths.watchdogLog(node.name),
      dataDir: node.dataDir,
    },
    trace
      ? (o) =>
          ctx.events.emit({
            event: 'agent-trace',
            node: node.name,
            message:
              o.until === null
                ? 'fence watchdog disarmed'
                : `fence watchdog: kill ${o.pid === null ? 'whichever postmaster owns the data directory' : `postmaster ${o.pid}`} in ${o.until - ctx.clock.now()} ms unless renewed`,
          })
      : undefined,
  );
  const reload = async () => {
    const next = { ...(await commandContext(g)), events: ctx.events };
    const still = next.spec.nodes.find((n) => n.name === node.name);
    return still ? agentContext(next, still, etcd) : next;
  };
  const token = readApiToken(paths.apiToken);
  const series = seriesRecorder(ctx.clock);
  const backups = backupScheduler({
    context: () => agent.context,
    store: haStore(etcd, ctx.spec.cluster),
    leaseId: () => agent.heldLeaseId,
  });
  const subscriptions = logicalKeeper({ context: () => agent.context });
  const agent: Agent = new Agent({
    ctx,
    node,
    ha,
    etcd,
    fence,
    api: agentApiUrl(ctx.spec, node, ha),
    reload,
    trace,
    onLoop: (state) => {
      series.observe(state);
      backups.onLoop(state);
      subscriptions.onLoop(state);
    },
    askFailsafe: failsafePeers({
      ha,
      token,
      context: () => ({ me: agent.context.node, spec: agent.context.ctx.spec }),
      tls: () => agentApiTls(agent.context.ctx.spec),
    }),
  });
  const address = agentApiAddress(node, ha);
  const target = { ha, etcd, store: haStore(etcd, ctx.spec.cluster) };
  const api = await startAgentApi({
    ...address,
    // Its node's certificate and key: the agent runs on its node's host.
    tls: hostOf(ctx, node).tls,
    ttlMs: ha.ttlSeconds * 1000,
    state: () => agent.current,
    clock: ctx.clock,
    lastBackup: () => backups.lastOk(),
    // Read only while this node is the primary: a replica has neither publications nor running subscriptions.
    logical: async () =>
      agent.current.self?.local.kind === 'primary'
        ? (await import('../../cluster/operations/read-logical-status.js')).readLogicalStatus(
            agent.context.ctx,
            agent.context.node.name,
          )
        : null,
    maximumLagOnFailover: ha.maximumLagOnFailover,
    failsafe: (leader) => agent.promiseFailsafe(leader),
    nodes: () => agent.context.ctx.spec.nodes.map((n) => ({ name: n.name, host: n.host, port: n.port })),
    nodeTags: () => ({
      nofailover: String(agent.context.node.noFailover),
      failover_priority: String(agent.context.node.failoverPriority),
    }),
    dashboard: {
      // Loaded when the page is first opened: `status`'s observation is not part of a bare agent.
      view: async () =>
        (await import('../../agent/dashboard/dashboard-view.js')).readDashboardView(agent.context.ctx),
      rings: series.rings,
      peers: () =>
        agent.context.ctx.spec.nodes
          .filter((n) => n.name !== agent.context.node.name)
          .map((n) => agentApiUrl(agent.context.ctx.spec, n, ha)),
      tls: agentApiTls(ctx.spec),
      actions: token !== null,
      self: node.name,
    },
    token,
    tokenFile: paths.apiToken,
    operations: agentOperations({ etcd, agent }),
    cluster: {
      switchover: (to) => switchoverThroughAgents(agent.context.ctx.spec, target, to),
      failover: (to, force) => failoverThroughAgents(agent.context.ctx.spec, target, to, force),
      pause: async (on) => ({ paused: on, agents: await pauseAgents(agent.context.ctx.spec, target, on) }),
    },
  }).catch((err: unknown) => {
    throw new PgreplError(
      'E_PORT_IN_USE',
      `${node.name}'s agent API cannot listen on ${address.host}:${address.port} (${(err as Error).message}); another agent for this node may run, or set ha.apiPortOffset`,
      { cause: err },
    );
  });
  ctx.events.emit({
    event: 'note',
    message: `agent of ${node.name}: API on ${agentApiUrl(ctx.spec, node, ha)}, etcd ${etcd.endpoints.join(', ')}`,
  });
  try {
    await asChanging(() => agent.run(interruptSignal));
  } finally {
    await api.close();
  }
  return 0;
}
