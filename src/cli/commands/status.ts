import { PgreplError } from '../../errors.js';
import { commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';
import { formatStatus } from '../format-status.js';
import { formatHaStatus } from '../../operator/ha-status.js';
import { readClusterStatus } from '../../operator/cluster-status.js';
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
    const { status, ha, json } = await readClusterStatus(ctx);
    const text = o.json
      ? JSON.stringify(
          { ...json, postgres: { version: ctx.env.bins.version, binDir: ctx.env.bins.binDir } },
          null,
          2,
        )
      : `${formatStatus(status, ctx.env.bins)}${ha ? `\n${formatHaStatus(ha)}` : ''}`;
    return { status, text };
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
