import { PgreplError } from '../../errors.js';

/**
 * Throws E_INTERRUPTED when the user asked pgrepl to stop (SIGINT/SIGTERM): called between two
 * steps, the one place where stopping leaves nothing half-done. `next` says what finishes the work.
 */
export function stopIfInterrupted(interrupt: AbortSignal | undefined, before: string, next: string): void {
  if (!interrupt?.aborted) return;
  throw new PgreplError(
    'E_INTERRUPTED',
    `stopped by ${String(interrupt.reason)} at a safe point, before ${before}; ${next}`,
  );
}
