import type { CloneProgress } from '../../postgres/run-basebackup.js';
import type { Step } from '../decide/plan-step.js';

/**
 * What operations tell while they run, as typed events: the CLI renders them for people (bars on
 * a TTY, lines otherwise) or as JSON lines (`--log-format json`); the agent will log and publish
 * the same ones.
 */
export type ClusterEvent =
  | { readonly event: 'step-started'; readonly step: Step }
  /** `outcome`: what the step found or did, when that is not obvious ("it was there already"). */
  | { readonly event: 'step-finished'; readonly step: Step; readonly ms: number; readonly outcome?: string }
  | { readonly event: 'clone-progress'; readonly node: string; readonly progress: CloneProgress }
  /** An operation decided what to do, and why (the reason a decide/ function returned). */
  | { readonly event: 'decision'; readonly op: string; readonly reason: string }
  /** A journaled step of an operation finished. */
  | { readonly event: 'journal-step'; readonly op: string; readonly step: string; readonly ms: number }
  /** Something done to one node, said as it happens. */
  | { readonly event: 'action'; readonly node: string; readonly message: string }
  /** An agent changed its decision (logged once per change, not every loop). */
  | {
      readonly event: 'agent';
      readonly node: string;
      readonly role: string;
      readonly timeline: number | null;
      readonly leader: string | null;
      readonly decision: string;
      readonly reason: string;
    }
  /**
   * What an agent's lease and fence watchdog were told, each time (PGREPL_AGENT_TRACE=1 only): the
   * timeline a split brain or a late fence is judged against, a few lines a second.
   */
  | { readonly event: 'agent-trace'; readonly node: string; readonly message: string }
  /** An agent's loop or action failed; it tries again next loop. */
  | { readonly event: 'agent-error'; readonly node: string; readonly during: string; readonly error: string }
  /** Anything else worth telling, e.g. what a plan leaves alone. */
  | { readonly event: 'note'; readonly message: string };

export interface EventSink {
  emit(e: ClusterEvent): void;
}

export const ignoreEvents: EventSink = { emit: () => undefined };
