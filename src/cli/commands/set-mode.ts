import { PgreplError } from '../../errors.js';
import { commandContext, jsonResult, topologyOf } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';
import { printResult } from './up.js';

/** `set-mode async | sync [--count N] | quorum --count N [--force]` */
export async function runSetMode(
  g: GlobalOptions,
  mode: string,
  o: { count?: string; force?: boolean; json?: boolean },
): Promise<number> {
  if (mode !== 'async' && mode !== 'sync' && mode !== 'quorum') {
    throw new PgreplError('E_USAGE', `mode must be async, sync or quorum, not "${mode}"`);
  }
  if (mode === 'async' && o.count !== undefined)
    throw new PgreplError('E_USAGE', 'async waits for no replica: --count goes with sync or quorum');
  if (mode === 'quorum' && o.count === undefined)
    throw new PgreplError('E_USAGE', 'quorum needs --count N (how many replicas must confirm)');
  const count = o.count === undefined ? 1 : Number(o.count);
  if (!Number.isInteger(count) || count < 1)
    throw new PgreplError('E_USAGE', `--count must be a whole number ≥ 1, not "${o.count}"`);
  const ctx = await commandContext(g);
  const r = await (await topologyOf(ctx)).setMode({ mode, count, force: o.force === true });
  if (r.via === 'agents') {
    const out = { mode, count: mode === 'async' ? null : count, ...r };
    process.stdout.write(
      o.json === true
        ? jsonResult(out)
        : `${mode}${mode === 'async' ? '' : ` ${count}`}: the agents took it in ${r.ms} ms; the leader ${r.leader} runs synchronous_standby_names = '${r.synchronousStandbyNames}'\n`,
    );
    return 0;
  }
  printResult(r.edited, { json: o.json === true }, r.result);
  return 0;
}
