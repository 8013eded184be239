import type { EventSink } from '../cluster/context/events.js';

/** The event output of this process, once a command asked for one; kept apart so that main() loads no renderer. */
let output: (EventSink & { close(): void }) | undefined;

export function registerEventOutput(make: () => EventSink & { close(): void }): EventSink {
  output ??= make();
  return output;
}

/** Ends the event output: stops progress bars, flushes JSON lines. */
export function closeEventOutput(): void {
  output?.close();
  output = undefined;
}
