import { describeDiscarded, runRejoin } from '../../cluster/run-rejoin.js';
import { observeCluster } from '../../cluster/observe-cluster.js';
import { roleOf } from '../../cluster/observation.js';
import { PgreplError } from '../../errors.js';
import type { ReplicationMode } from '../../spec/cluster-spec.js';
import { writeReplicationMode } from '../../spec/edit-spec.js';
import { EMBEDDED_SOURCE } from '../../spec/load-spec.js';
import { changing, commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';
import { consoleReporter } from '../console-reporter.js';
import { runUp } from './up.js';

const say = (m: string) => process.stderr.write(`• ${m}\n`);

/** `rejoin NODE [--reclone]` */
export async function runRejoinCommand(
  g: GlobalOptions,
  node: string,
  o: { reclone?: boolean; json?: boolean },
): Promise<number> {
  const ctx = await commandContext(g);
  const reporter = consoleReporter();
  try {
    const r = await changing(ctx, 'rejoin', () =>
      runRejoin(ctx, node, { reclone: o.reclone === true, reporter }, say),
    );
    if (o.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    else {
      const lines = [
        `${r.node} streams from ${r.primary} again (${r.method}, ${(r.ms / 1000).toFixed(1)} s).`,
      ];
      if (r.recloneReason) lines.push(`re-cloned because ${r.recloneReason}`);
      if (r.discarded)
        lines.push(`thrown away, it existed only on ${r.node}: ${describeDiscarded(r.discarded)}`);
      if (r.movedAside)
        lines.push(
          `the old data directory was moved to ${r.movedAside}; remove it when you no longer need it`,
        );
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return 0;
  } finally {
    reporter.close();
  }
}

/** `set-mode async | sync [--count N] | quorum --count N [--force]` */
export async function runSetMode(
  g: GlobalOptions,
  mode: string,
  o: { count?: string; force?: boolean; json?: boolean },
): Promise<number> {
  if (mode !== 'async' && mode !== 'sync' && mode !== 'quorum') {
    throw new PgreplError('E_REFUSED', `mode must be async, sync or quorum, not "${mode}"`);
  }
  if (mode === 'quorum' && o.count === undefined)
    throw new PgreplError('E_REFUSED', 'quorum needs --count N (how many replicas must confirm)');
  const count = o.count === undefined ? 1 : Number(o.count);
  if (!Number.isInteger(count) || count < 1)
    throw new PgreplError('E_REFUSED', `--count must be a whole number ≥ 1, not "${o.count}"`);
  const ctx = await commandContext(g);
  if (ctx.spec.source === EMBEDDED_SOURCE) {
    throw new PgreplError(
      'E_SPEC_NOT_FOUND',
      'set-mode records the mode in pgrepl.yaml; write it first with `pgrepl init` (same cluster as the default)',
    );
  }
  await changing(ctx, 'set-mode', async () => {
    if (mode !== 'async') {
      const obs = await observeCluster(ctx);
      const primary = obs.nodes.find((n) => roleOf(n) === 'primary');
      const streaming = primary?.server?.ok
        ? primary.server.senders.filter((s) => s.state === 'streaming').length
        : 0;
      if (count > streaming && !o.force) {
        throw new PgreplError(
          'E_REFUSED',
          `${mode} --count ${count} needs ${count} streaming replica(s) and ${streaming} stream now: every commit would hang. ` +
            'Bring replicas up first, or add --force if that is what you want; nothing was changed',
        );
      }
    }
    writeReplicationMode(ctx.spec.source, mode as ReplicationMode, count);
  });
  // The spec now says the mode; `up` renders synchronous_standby_names on every node and reloads.
  return runUp(g, { json: o.json === true }, { create: false });
}
