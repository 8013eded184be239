import { readFileSync, writeFileSync } from 'node:fs';
import type { ReplicationMode } from './cluster-spec.js';
import { deleteKeyText, deleteNamedItemText, setScalarText } from './edit-yaml-text.js';
import { parseSpec } from './parse-spec.js';
import { dirname } from 'node:path';

/**
 * Records the replication mode in the spec file, keeping its comments and layout, after checking
 * that the edited spec is still valid (so a refused edit leaves the file as it was).
 */
export function writeReplicationMode(file: string, mode: ReplicationMode, syncCount: number): void {
  const withMode = setScalarText(readFileSync(file, 'utf8'), ['replication', 'mode'], mode);
  const text =
    mode === 'async'
      ? deleteKeyText(withMode, ['replication', 'syncCount'])
      : setScalarText(withMode, ['replication', 'syncCount'], syncCount);
  parseSpec(text, file, dirname(file));
  writeFileSync(file, text);
}

/**
 * Removes node `name` from the spec file, keeping the rest of its text, comments and layout as they
 * are; refused (the file unchanged) when the edited spec would be invalid, e.g. with no node left.
 */
export function removeNodeFromSpec(file: string, name: string): void {
  const text = deleteNamedItemText(readFileSync(file, 'utf8'), ['nodes'], name);
  parseSpec(text, file, dirname(file));
  writeFileSync(file, text);
}
