import Table from 'cli-table3';
import { rotateCerts } from '../../cluster/operations/rotate-certs.js';
import type { RotateResult } from '../../cluster/operations/rotate-certs.js';
import { changing, commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';

/** `rotate-certs [--all] [--dry-run] [--json]`: renews the certificates of tls: auto, online. */
export async function runRotateCerts(
  g: GlobalOptions,
  o: { all?: boolean; dryRun?: boolean; json?: boolean },
): Promise<number> {
  const ctx = await commandContext(g);
  const opts = { all: o.all === true, dryRun: o.dryRun === true };
  const result = opts.dryRun
    ? await rotateCerts(ctx, opts)
    : await changing(ctx, 'rotate-certs', () => rotateCerts(ctx, opts));
  process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : describe(result, opts.dryRun));
  return 0;
}

function describe(r: RotateResult, dryRun: boolean): string {
  const table = new Table({
    head: ['certificate', 'valid until', 'names', dryRun ? 'would do' : 'done'],
    style: { head: [], border: [], compact: true },
  });
  for (const c of r.certs)
    table.push([c.name, c.notAfter?.slice(0, 10) ?? 'none', c.names.join(', ') || '-', c.action ?? '-']);
  const summary =
    r.steps.length === 0
      ? 'nothing to renew'
      : `${dryRun ? 'would issue' : 'issued'} ${r.steps.length} certificate(s)${dryRun ? '' : '; each running server reloaded and serves its new one'}`;
  return `${table.toString()}\n${summary}\n`;
}
