import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeOwnedFile } from '../../postgres/owned-paths.js';

/**
 * Where an online upgrade stands, kept in the old cluster's state dir so that `--cutover`,
 * `--rollback` and `--finish` (and a run cut short) pick it up: preparing until the new cluster
 * has caught up, subscribed until the cutover, cut-over until finished or rolled back.
 */
export interface UpgradeRecord {
  readonly phase: 'preparing' | 'subscribed' | 'cut-over' | 'finished';
  /** The new cluster: its name, its spec file beside the old one, its installation. */
  readonly cluster: string;
  readonly specFile: string;
  readonly stateDir: string;
  readonly binDir: string;
  readonly version: string;
  readonly portOffset: number;
  readonly nodes: readonly string[];
  /** The databases moved, in order: database number i (from 1) names its subscriptions. */
  readonly databases: readonly string[];
  /** pgrepl_upgrade publications this upgrade added to the old spec (a rollback takes them out). */
  readonly addedPublications: boolean;
  readonly startedAt: string;
  readonly cutoverAt?: string;
  /** Writes were refused this long at the cutover (fence to the new primary taking them). */
  readonly gapMs?: number;
}

const recordPath = (stateDir: string) => join(stateDir, 'upgrade.json');

export function readUpgradeRecord(stateDir: string): UpgradeRecord | null {
  const path = recordPath(stateDir);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as UpgradeRecord) : null;
}

/** Written whole through a rename: a crash leaves the old record or the new one, never half of one. */
export function writeUpgradeRecord(stateDir: string, r: UpgradeRecord): void {
  writeOwnedFile(recordPath(stateDir), `${JSON.stringify(r, null, 2)}\n`, 0o600, undefined);
}

export function removeUpgradeRecord(stateDir: string): void {
  rmSync(recordPath(stateDir), { force: true });
}
