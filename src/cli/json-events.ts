import { writeSync } from 'node:fs';
import { describeEvent } from './describe-event.js';
import type { EventSink } from '../cluster/context/events.js';

/**
 * `--log-format json`: one JSON line per event on stderr, in pino's shape (`level` 30, an ISO
 * `time`, `pid`, the event's typed fields, its human text as `msg`), so that log shippers set up
 * for pino read it. stdout stays for the command's result (`--json`). Written synchronously: a
 * line is out before the step it tells of goes on. (Not pino itself: its module tree, loaded for
 * these few lines, was ~0.5 MiB of every agent's resident memory.)
 */
export function jsonEvents(fd = 2): EventSink & { close(): void } {
  return {
    emit(e) {
      const line = {
        level: 30,
        time: new Date().toISOString(),
        pid: process.pid,
        ...e,
        msg: describeEvent(e),
      };
      writeAll(fd, `${JSON.stringify(line)}\n`);
    },
    close() {
      // Every line was written when it was emitted.
    },
  };
}

/** Writes all of `text`, also to a non-blocking pipe that is full for a moment (EAGAIN: wait 1 ms, again). */
function writeAll(fd: number, text: string): void {
  let rest = Buffer.from(text);
  while (rest.length > 0) {
    try {
      rest = rest.subarray(writeSync(fd, rest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}
