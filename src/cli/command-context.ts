import { buildContext } from '../cluster/context/cluster-context.js';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { exclusively } from '../cluster/operations/exclusive.js';
import { refuseWhileAgentsRun } from '../operator/ha-target.js';
import type { Topology } from '../operator/topology.js';
import { processRunner } from '../postgres/command-runner.js';
import { loadSpec } from '../cluster-spec/load-spec.js';
import type { EventSink } from '../cluster/context/events.js';
import { PgreplError } from '../errors.js';
import { humanEvents } from './human-events.js';
import { registerEventOutput } from './event-output.js';
import { jsonEvents } from './json-events.js';
import { asChanging, interruptSignal } from './process-signals.js';

/** Global options every command takes. */
export interface GlobalOptions {
  config?: string;
  logFormat?: string;
}

/** Where this process tells what operations do: for people on stderr, or JSON lines (`--log-format json`). */
export function eventOutput(g: GlobalOptions): EventSink {
  if (g.logFormat !== undefined && g.logFormat !== 'human' && g.logFormat !== 'json')
    throw new PgreplError('E_USAGE', `--log-format must be human or json, not "${g.logFormat}"`);
  return registerEventOutput(() => (g.logFormat === 'json' ? jsonEvents() : humanEvents()));
}

/** Loads the spec and resolves the context at the edge, from this process's cwd and env. */
export async function commandContext(g: GlobalOptions): Promise<ClusterContext> {
  const spec = await loadSpec({
    cwd: process.cwd(),
    env: process.env,
    ...(g.config === undefined ? {} : { file: g.config }),
  });
  return buildContext(spec, {
    runner: processRunner,
    env: process.env,
    interrupt: interruptSignal,
    events: eventOutput(g),
  });
}

/**
 * Runs a command that changes the cluster: exclusively (under the lock, and only when no earlier
 * operation was left half-done unless `allowInterrupted`), with SIGINT/SIGTERM waiting for a safe point.
 */
export async function changing<T>(
  ctx: ClusterContext,
  command: string,
  fn: () => Promise<T>,
  opts: { allowInterrupted?: boolean } = {},
): Promise<T> {
  if (!ALONGSIDE_AGENTS.has(command)) await refuseWhileAgentsRun(ctx.spec, ctx.processEnv, command);
  return exclusively(ctx, command, () => asChanging(fn), opts);
}

/**
 * How this command reaches the cluster: through the agents while they run it, else directly. Loaded
 * when asked: every command imports this file, and the agent must not load the operations.
 */
export async function topologyOf(ctx: ClusterContext): Promise<Topology> {
  const { topologyFor } = await import('../operator/topology.js');
  return topologyFor(ctx, {
    changing: (command, fn) => changing(ctx, command, fn),
    exclusive: (command, fn) => exclusively(ctx, command, () => asChanging(fn)),
  });
}

/** A result for `--json`: which way it went is `throughAgents: true` when through the agents. */
export function jsonResult(r: { readonly via: 'agents' | 'direct' } & object): string {
  const { via, ...rest } = r;
  return `${JSON.stringify(via === 'agents' ? { ...rest, throughAgents: true } : rest, null, 2)}
`;
}

/**
 * Commands that do not fight running agents: `up`/`start` hand the nodes to them, `down` and
 * `destroy` stop them first, `reload` only re-reads files, `clean` removes old copies,
 * `rotate-certs` writes certificates and has servers read them again (a reload).
 */
const ALONGSIDE_AGENTS = new Set(['up', 'start', 'down', 'destroy', 'reload', 'clean', 'rotate-certs']);
