import { PgreplError } from '../../errors.js';
import type { Clock } from '../context/clock.js';
import { ignoreEvents } from '../context/events.js';
import type { EventSink } from '../context/events.js';
import { crashIfAt, parseCrashPoint } from '../context/crash-point.js';
import { stopIfInterrupted } from '../context/safe-stop.js';
import type { CrashPoint } from '../context/crash-point.js';
import type { ClusterStore, JournalEntry } from '../store/cluster-store.js';
import { monotonicNow } from '../../monotonic-now.js';

/** A running operation's journal: `step()` before each step, `finish()` at the end. */
export class Journal {
  private entry: JournalEntry;

  private constructor(
    private readonly store: ClusterStore,
    /** Told when each step is done, with how long it took. */
    private readonly events: EventSink,
    entry: JournalEntry,
    /** Failpoint for crash tests (PGREPL_CRASH_AT). */
    private readonly crashAt: CrashPoint | undefined,
    /** Aborted when the user asks to stop: the operation stops before its next step. */
    private readonly interrupt: AbortSignal | undefined,
  ) {
    this.entry = entry;
  }

  /** Begins a new operation's journal, written to the store before its first step. */
  static async begin(
    store: ClusterStore,
    init: Pick<JournalEntry, 'op' | 'resume' | 'facts'>,
    o: {
      crashAt?: CrashPoint | undefined;
      interrupt?: AbortSignal | undefined;
      startedAt: string;
      events?: EventSink;
    },
  ): Promise<Journal> {
    const entry = { ...init, pid: process.pid, startedAt: o.startedAt, step: 'begin', done: [] };
    await store.writeJournal(entry);
    return new Journal(store, o.events ?? ignoreEvents, entry, o.crashAt, o.interrupt);
  }

  /** Takes up the journal an interrupted run left in the store. */
  static resume(
    store: ClusterStore,
    entry: JournalEntry,
    o: { interrupt: AbortSignal | undefined; events: EventSink },
  ): Journal {
    return new Journal(store, o.events, entry, undefined, o.interrupt);
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
    await this.store.writeJournal(this.entry);
    crashIfAt(this.crashAt, 'before', step);
    const began = monotonicNow();
    const result = await fn();
    crashIfAt(this.crashAt, 'during', step);
    this.events.emit({ event: 'journal-step', op: this.entry.op, step, ms: monotonicNow() - began });
    this.entry = { ...this.entry, done: [...this.entry.done, step] };
    await this.store.writeJournal(this.entry);
    crashIfAt(this.crashAt, 'after', step);
    return result;
  }

  finish(): Promise<void> {
    return this.store.clearJournal();
  }
}

/**
 * Begins a journaled operation: its steps are told with their durations, and the crash failpoint
 * (PGREPL_CRASH_AT) comes from the command's environment.
 */
export function beginJournal(
  ctx: {
    store: ClusterStore;
    clock: Clock;
    events: EventSink;
    processEnv: Readonly<Record<string, string | undefined>>;
    interrupt: AbortSignal | undefined;
  },
  init: Pick<JournalEntry, 'op' | 'resume' | 'facts'>,
): Promise<Journal> {
  return Journal.begin(ctx.store, init, {
    crashAt: parseCrashPoint(ctx.processEnv['PGREPL_CRASH_AT']),
    interrupt: ctx.interrupt,
    startedAt: new Date(ctx.clock.wallNow()).toISOString(),
    events: ctx.events,
  });
}

/** Refuses any change while an interrupted operation's journal is there, and says what to do. */
export async function assertNoInterruptedOperation(store: ClusterStore): Promise<void> {
  const j = await store.readJournal();
  if (!j) return;
  throw new PgreplError(
    'E_INTERRUPTED_OPERATION',
    `\`pgrepl ${j.resume.join(' ')}\` (started ${j.startedAt}, pid ${j.pid}) was interrupted during step "${j.step}"` +
      `${j.done.length > 0 ? ` after ${j.done.join(', ')}` : ''}. ` +
      'Run `pgrepl resume` to finish it, or `pgrepl abandon` to undo what can still be undone.',
  );
}
