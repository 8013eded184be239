import { killLiveChildren } from '../postgres/command-runner.js';

/** Aborted by the first SIGINT/SIGTERM while a command changes the cluster (its reason: the signal). */
const interruption = new AbortController();
let changing = false;
let outputGone = false;

/** The signal operations watch to stop at their next safe point. */
export const interruptSignal: AbortSignal = interruption.signal;

/** Whether stdout was closed by its reader (`| head`): a watch loop then ends. */
export const outputClosed = (): boolean => outputGone;

/**
 * How pgrepl reacts to its process's surroundings:
 * - SIGINT/SIGTERM while a command changes the cluster: stop at the next safe point (between two
 *   steps), so that a switchover is never left between the old primary's stop and the promotion;
 *   a second one stops at once, taking down the programs pgrepl started. Elsewhere: at once.
 * - SIGHUP (the terminal or SSH connection went away): ignored, the work goes on.
 * - A closed stdout or stderr (EPIPE, `| head`): the output is dropped, the work goes on.
 */
export function installProcessHandlers(): void {
  for (const [signal, exit] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(signal, () => {
      if (changing && !interruption.signal.aborted) {
        interruption.abort(signal);
        process.stderr.write(
          `pgrepl: ${signal}: stopping at the next safe point (after the current step); send it again to stop at once\n`,
        );
        return;
      }
      killLiveChildren();
      process.stderr.write(`pgrepl: interrupted by ${signal}; started programs were stopped\n`);
      process.exit(exit);
    });
  }
  process.on('SIGHUP', () => undefined);
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      if (stream === process.stdout) outputGone = true;
    });
  }
}

/** Runs `fn` as a command that changes the cluster: the first SIGINT/SIGTERM waits for a safe point. */
export async function asChanging<T>(fn: () => Promise<T>): Promise<T> {
  changing = true;
  try {
    return await fn();
  } finally {
    changing = false;
  }
}

/** The exit code of a command stopped by a signal at a safe point: 128 + the signal's number. */
export function interruptedExitCode(): number {
  return interruption.signal.reason === 'SIGTERM' ? 143 : 130;
}
