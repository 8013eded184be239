import { observeCluster } from '../../cluster/observe/observe-cluster.js';
import { buildStatus } from '../../cluster/decide/status-report.js';
import { certStatus } from '../../cluster/decide/plan-certs.js';
import { readCertsOf, readOwnCerts } from '../../cluster/actions/node-certs.js';
import { PgreplError } from '../../errors.js';
import { commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';
import { formatStatus } from '../format-status.js';
import { formatHaStatus, readHaStatus } from '../../operator/ha-status.js';
import { outputClosed } from '../process-signals.js';

export interface StatusOptions {
  json?: boolean;
  watch?: boolean;
  interval?: string;
}

/** Exit code of `status` when the cluster is not healthy (1 is reserved for errors). */
export const EXIT_UNHEALTHY = 3;

export async function runStatus(g: GlobalOptions, o: StatusOptions): Promise<number> {
  const seconds = Number(o.interval ?? '2');
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new PgreplError('E_USAGE', `--interval takes a number of seconds above 0, not "${o.interval}"`);
  const ctx = await commandContext(g);
  const once = async () => {
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
    const withHa = ha
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
      : status;
    const text = o.json
      ? JSON.stringify(
          { ...withHa, postgres: { version: ctx.env.bins.version, binDir: ctx.env.bins.binDir } },
          null,
          2,
        )
      : `${formatStatus({ ...status, healthy }, ctx.env.bins)}${ha ? `\n${formatHaStatus(ha)}` : ''}`;
    return { status: { ...status, healthy }, text };
  };
  if (!o.watch) {
    const { status, text } = await once();
    process.stdout.write(`${text}\n`);
    return status.healthy ? 0 : EXIT_UNHEALTHY;
  }
  const intervalMs = Math.max(200, seconds * 1000);
  // Until interrupted, or until whoever reads the output stops reading (`| head`).
  while (!outputClosed()) {
    const { text } = await once();
    const clear = process.stdout.isTTY && !o.json ? '\x1b[2J\x1b[H' : '';
    process.stdout.write(`${clear}${new Date().toISOString()}\n${text}\n`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return 0;
}
