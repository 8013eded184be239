import type { CloneProgress } from '../../postgres/run-basebackup.js';
import type { Step } from '../decide/plan-step.js';

/** Where operations tell what they are doing; the CLI renders it (bars on a TTY, lines otherwise). */
export interface Reporter {
  stepStarted(step: Step): void;
  stepFinished(step: Step, ms: number): void;
  cloneProgress(node: string, progress: CloneProgress): void;
  note(message: string): void;
}
