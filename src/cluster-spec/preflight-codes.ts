/** What logical replication's pre-flight check can find; a user skips a blocking finding by its code. */
export const PREFLIGHT_CODES = [
  'missing-table',
  'not-a-table',
  'no-replica-identity',
  'unlogged',
  'large-objects',
  'sequences',
  'missing-extension',
  'missing-on-subscriber',
  'column-mismatch',
  'collation',
] as const;

export type PreflightCode = (typeof PREFLIGHT_CODES)[number];
