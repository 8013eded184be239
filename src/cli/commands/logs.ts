import { controlOf } from '../../cluster/actions/control-of.js';
import { nodeOf } from '../../cluster/context/node-sql.js';
import { PgreplError } from '../../errors.js';
import { commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';
import { outputClosed } from '../process-signals.js';

/** `logs NODE [-n N] [-f]`: the end of a node's server log, and with -f what it writes next. */
export async function runLogs(
  g: GlobalOptions,
  name: string,
  o: { lines?: string; follow?: boolean },
): Promise<number> {
  const lines = Number(o.lines ?? '50');
  if (!Number.isInteger(lines) || lines < 0)
    throw new PgreplError('E_USAGE', `-n takes a whole number of lines, not "${o.lines}"`);
  const ctx = await commandContext(g);
  const control = controlOf(ctx, nodeOf(ctx, name));
  let offset = control.logLength();
  const tail = lines === 0 ? '' : control.logTail(lines);
  if (tail !== '') process.stdout.write(`${tail}\n`);
  // Until interrupted, or until whoever reads the output stops reading (`| head`).
  while (o.follow && !outputClosed()) {
    await ctx.clock.sleep(200);
    const size = control.logLength();
    if (size < offset) offset = 0; // the log was truncated or replaced: read it from its start
    if (size > offset) {
      process.stdout.write(control.logSince(offset));
      offset = size;
    }
  }
  return 0;
}
