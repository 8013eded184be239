/**
 * What an agent answers to an operator's request on its node (restart, reload, stop, start, leave):
 * the server's role and postmaster PID before and after, and how long it took.
 */
export interface NodeOperationResult {
  readonly node: string;
  readonly role: string;
  readonly pidBefore: number | null;
  readonly pidAfter: number | null;
  readonly ms: number;
  /** reload: the settings that still wait for a restart. */
  readonly pendingRestart?: readonly string[];
}
