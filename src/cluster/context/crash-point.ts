/**
 * Failpoints for crash tests: with PGREPL_CRASH_AT="<phase>:<step>", pgrepl kills itself with
 * SIGKILL (a real signal, as a power cut or an OOM killer would) at that point of a journaled
 * operation or of `up`'s plan:
 * - before: the journal names the step as current, nothing of it has run;
 * - during: the step's effect has happened but is not yet recorded as done (the case a resume
 *   must recognise from what the servers say);
 * - after: the step is recorded as done.
 */
export type CrashPhase = 'before' | 'during' | 'after';

export interface CrashPoint {
  readonly phase: CrashPhase;
  readonly step: string;
}

/** The failpoint PGREPL_CRASH_AT names, or undefined. */
export function parseCrashPoint(value: string | undefined): CrashPoint | undefined {
  const m = /^(before|during|after):(.+)$/.exec(value ?? '');
  return m ? { phase: m[1] as CrashPhase, step: m[2] as string } : undefined;
}

/** Dies by SIGKILL when `point` is this phase of this step. */
export function crashIfAt(point: CrashPoint | undefined, phase: CrashPhase, step: string): void {
  if (point?.phase === phase && point.step === step) process.kill(process.pid, 'SIGKILL');
}
