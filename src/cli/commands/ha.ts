import { haTarget } from '../../operator/ha-target.js';
import { pauseAgents } from '../../operator/agent-requests.js';
import { PgreplError } from '../../errors.js';
import { commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';

/** `pause` (on) and `unpause` (off): the agents' maintenance mode, kept in etcd. */
export async function runPause(g: GlobalOptions, on: boolean, o: { json?: boolean }): Promise<number> {
  const ctx = await commandContext(g);
  const t = haTarget(ctx.spec, ctx.processEnv);
  if (!t)
    throw new PgreplError(
      'E_USAGE',
      `cluster ${ctx.spec.cluster} has no agents to ${on ? 'pause' : 'unpause'} (no ha section, and \`pgrepl up --ha\` was not run)`,
    );
  const agents = await pauseAgents(ctx.spec, t, on);
  process.stdout.write(
    o.json
      ? `${JSON.stringify({ paused: on, agents }, null, 2)}\n`
      : on
        ? `paused: the agents of ${agents.join(', ')} observe and report, and change nothing (no failover) until \`pgrepl unpause\`\n`
        : `unpaused: the agents of ${agents.join(', ')} act again\n`,
  );
  return 0;
}
