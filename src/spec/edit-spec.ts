import { readFileSync, writeFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { ReplicationMode } from './cluster-spec.js';
import { parseSpec } from './parse-spec.js';
import { dirname } from 'node:path';

/**
 * Records the replication mode in the spec file, keeping its comments and layout, after checking
 * that the edited spec is still valid (so a refused edit leaves the file as it was).
 */
export function writeReplicationMode(file: string, mode: ReplicationMode, syncCount: number): void {
  const doc = parseDocument(readFileSync(file, 'utf8'));
  doc.setIn(['replication', 'mode'], mode);
  if (mode === 'async') doc.deleteIn(['replication', 'syncCount']);
  else doc.setIn(['replication', 'syncCount'], syncCount);
  const text = doc.toString();
  parseSpec(text, file, dirname(file));
  writeFileSync(file, text);
}
