import pino from 'pino';
import { describeEvent } from '../cluster/context/events.js';
import type { EventSink } from '../cluster/context/events.js';

/**
 * `--log-format json`: one JSON line per event on stderr (pino): the event's typed fields, its
 * human text as `msg`, an ISO time. stdout stays for the command's result (`--json`).
 */
export function jsonEvents(fd = 2): EventSink & { close(): void } {
  const destination = pino.destination({ dest: fd, sync: true });
  const log = pino(
    { base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'msg' },
    destination,
  );
  return {
    emit(e) {
      log.info(e, describeEvent(e));
    },
    close() {
      destination.flushSync();
    },
  };
}
