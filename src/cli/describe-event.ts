import type { ClusterEvent } from '../cluster/context/events.js';
import { describeStep } from '../cluster/decide/plan-step.js';

/** The line a person reads for an event (the `msg` of its JSON line). */
export function describeEvent(e: ClusterEvent): string {
  switch (e.event) {
    case 'step-started':
      return describeStep(e.step);
    case 'step-finished':
      return `${describeStep(e.step)}: ${e.outcome ?? 'done'} in ${e.ms} ms`;
    case 'clone-progress':
      return `clone ${e.node}: ${e.progress.phase}`;
    case 'journal-step':
      return `done: ${e.step} (${e.ms} ms)`;
    case 'agent':
      return `${e.node} (${e.role}${e.timeline === null ? '' : `, timeline ${e.timeline}`}): ${e.decision}: ${e.reason}`;
    case 'agent-error':
      return `${e.node}: ${e.during} failed: ${e.error}`;
    case 'agent-trace':
      return `${e.node}: trace: ${e.message}`;
    case 'decision':
    case 'action':
    case 'note':
      return 'message' in e ? e.message : e.reason;
  }
}
