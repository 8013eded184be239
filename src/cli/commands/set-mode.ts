import { agentsActive, assertAgentsTakeSpec, haTarget, waitModeTaken } from '../../agent/ha-commands.js';
import { exclusively } from '../../cluster/operations/exclusive.js';
import { setMode } from '../../cluster/operations/run-set-mode.js';
import { PgreplError } from '../../errors.js';
import { changing, commandContext } from '../command-context.js';
import { asChanging } from '../process-signals.js';
import type { GlobalOptions } from '../command-context.js';
import { applyUp, planCluster } from '../../cluster/operations/run-up.js';
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
  const t = haTarget(ctx.spec, ctx.processEnv);
  if (t && (await agentsActive(ctx.spec, t)).active) {
    await assertAgentsTakeSpec(ctx, t);
    const began = Date.now();
    // The agents take the edited spec themselves: the leader's records a wider synchronous set
    // before its server waits on it, a narrower one once that is safe.
    const taken = await exclusively(ctx, 'set-mode', () =>
      asChanging(async () => waitModeTaken(await setMode(ctx, { mode, count, force: o.force === true }), t)),
    );
    const out = {
      mode,
      count: mode === 'async' ? null : count,
      ...taken,
      throughAgents: true,
      ms: Date.now() - began,
    };
    process.stdout.write(
      o.json === true
        ? `${JSON.stringify(out, null, 2)}\n`
        : `${mode}${mode === 'async' ? '' : ` ${count}`}: the agents took it in ${out.ms} ms; the leader ${taken.leader} runs synchronous_standby_names = '${taken.synchronousStandbyNames}'\n`,
    );
    return 0;
  }
  // One lock for the edit and the apply: no other command sees the spec and the servers disagree.
  const r = await changing(ctx, 'set-mode', async () => {
    const edited = await setMode(ctx, { mode, count, force: o.force === true });
    return { edited, result: await applyUp(edited, await planCluster(edited, { create: false })) };
  });
  printResult(r.edited, { json: o.json === true }, r.result);
  return 0;
}
