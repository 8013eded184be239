import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PgreplError } from '../../errors.js';
import type { RunAs } from '../../postgres/command-runner.js';
import { writeOwnedFile } from '../../postgres/owned-paths.js';
import { crashIfAt, parseCrashPoint } from '../context/crash-point.js';
import { stopIfInterrupted } from '../context/safe-stop.js';
import type { CrashPoint } from '../context/crash-point.js';

/** What a topology operation is doing, written before each step so a crash leaves a trace. */
export interface JournalEntry {
  readonly op: 'promote' | 'switchover' | 'rejoin';
  /** The command line that resumes it. */
  readonly resume: string[];
  /** Facts later steps and an undo need (e.g. the old primary's name). */
  readonly facts: Readonly<Record<string, string>>;
  readonly pid: number;
  readonly startedAt: string;
  /** The step being performed (not yet known to be complete). */
  readonly step: string;
  readonly done: readonly string[];
}

export const journalPath = (stateDir: string) => join(stateDir, 'journal.json');

export function readJournal(stateDir: string): JournalEntry | null {
  try {
    return JSON.parse(readFileSync(journalPath(stateDir), 'utf8')) as JournalEntry;
  } catch {
    return null;
  }
}

/** A running operation's journal: `step()` before each step, `finish()` at the end. */
export class Journal {
  private entry: JournalEntry;

  constructor(
    private readonly stateDir: string,
    private readonly runAs: RunAs | undefined,
    init: Pick<JournalEntry, 'op' | 'resume' | 'facts'>,
    resumed?: JournalEntry,
    /** Failpoint for crash tests (PGREPL_CRASH_AT). */
    private readonly crashAt?: CrashPoint,
    /** Aborted when the user asks to stop: the operation stops before its next step. */
    private readonly interrupt?: AbortSignal,
  ) {
    this.entry = resumed ?? {
      ...init,
      pid: process.pid,
      startedAt: new Date().toISOString(),
      step: 'begin',
      done: [],
    };
    this.write();
  }

  get facts(): Readonly<Record<string, string>> {
    return this.entry.facts;
  }

  get op(): JournalEntry['op'] {
    return this.entry.op;
  }

  /** The step that was running last (an interrupted run's: the one it was killed in, unless done). */
  get current(): string {
    return this.entry.step;
  }

  /** Whether a step finished in an earlier, interrupted run of the same operation. */
  hasDone(step: string): boolean {
    return this.entry.done.includes(step);
  }

  /** Told when each step is done, with how long it took (the CLI prints it). */
  onStepDone: (step: string, ms: number) => void = () => undefined;

  /**
   * Records that `step` is about to run, runs it, then records it done (skipped if done before).
   * Before it, a stop the user asked for happens, unless `midway` says that stopping there would
   * leave the cluster worse than either end (no primary between a stop and a promotion).
   */
  async step<T>(step: string, fn: () => Promise<T>, o: { midway?: boolean } = {}): Promise<T | undefined> {
    if (this.hasDone(step)) return undefined;
    // A rejoin clears its journal when it stops (each of its steps is safe to repeat): it is simply
    // run again. The others keep theirs for resume.
    const next =
      this.entry.op === 'rejoin'
        ? `run \`pgrepl ${this.entry.resume.join(' ')}\` again to finish it`
        : 'run `pgrepl resume` to finish it (`pgrepl status` shows where it stands)';
    if (o.midway !== true) stopIfInterrupted(this.interrupt, `step "${step}"`, next);
    this.entry = { ...this.entry, step };
    this.write();
    crashIfAt(this.crashAt, 'before', step);
    const began = Date.now();
    const result = await fn();
    crashIfAt(this.crashAt, 'during', step);
    this.onStepDone(step, Date.now() - began);
    this.entry = { ...this.entry, done: [...this.entry.done, step] };
    this.write();
    crashIfAt(this.crashAt, 'after', step);
    return result;
  }

  finish(): void {
    rmSync(journalPath(this.stateDir), { force: true });
  }

  private write(): void {
    writeOwnedFile(journalPath(this.stateDir), `${JSON.stringify(this.entry, null, 2)}\n`, 0o600, this.runAs);
  }
}

/**
 * Begins a journaled operation: its steps are printed with their durations, and the crash
 * failpoint (PGREPL_CRASH_AT) comes from the command's environment.
 */
export function beginJournal(
  ctx: {
    spec: { stateDir: string };
    env: { runAs: RunAs | undefined };
    processEnv: Readonly<Record<string, string | undefined>>;
    interrupt: AbortSignal | undefined;
  },
  init: Pick<JournalEntry, 'op' | 'resume' | 'facts'>,
  say: (m: string) => void,
): Journal {
  const journal = new Journal(
    ctx.spec.stateDir,
    ctx.env.runAs,
    init,
    undefined,
    parseCrashPoint(ctx.processEnv['PGREPL_CRASH_AT']),
    ctx.interrupt,
  );
  journal.onStepDone = (step, ms) => say(`done: ${step} (${ms} ms)`);
  return journal;
}

/** Refuses any change while an interrupted operation's journal is there, and says what to do. */
export function assertNoInterruptedOperation(stateDir: string): void {
  const j = readJournal(stateDir);
  if (!j) return;
  throw new PgreplError(
    'E_INTERRUPTED_OPERATION',
    `\`pgrepl ${j.resume.join(' ')}\` (started ${j.startedAt}, pid ${j.pid}) was interrupted during step "${j.step}"` +
      `${j.done.length > 0 ? ` after ${j.done.join(', ')}` : ''}. ` +
      'Run `pgrepl resume` to finish it, or `pgrepl abandon` to undo what can still be undone.',
  );
}
