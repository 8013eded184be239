import { readFileSync, writeFileSync } from 'node:fs';
import { isMap, isSeq, parseDocument } from 'yaml';
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

/**
 * Removes node `name` from the spec file, keeping the rest of its text, comments and layout as they
 * are; refused (the file unchanged) when the edited spec would be invalid, e.g. with no node left.
 */
export function removeNodeFromSpec(file: string, name: string): void {
  const doc = parseDocument(readFileSync(file, 'utf8'));
  const nodes = doc.get('nodes');
  if (!isSeq(nodes)) throw new Error(`${file} has no nodes list`);
  const at = nodes.items.findIndex((item) => isMap(item) && item.get('name') === name);
  if (at < 0) throw new Error(`${file} has no node ${name}`);
  nodes.delete(at);
  const text = doc.toString();
  parseSpec(text, file, dirname(file));
  writeFileSync(file, text);
}
