import { isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Pair, YAMLMap } from 'yaml';

/**
 * Edits of a YAML text that change only the bytes they must: every other line, comment and
 * alignment of the user's file stays as it was (re-serialising the document would reflow them).
 * Each edit parses the text it is given, so they compose.
 */

const lineStart = (text: string, at: number) => text.lastIndexOf('\n', at - 1) + 1;
const lineEnd = (text: string, at: number) => {
  const nl = text.indexOf('\n', at);
  return nl < 0 ? text.length : nl + 1;
};

function mapAt(text: string, path: readonly string[]): YAMLMap | null {
  const node = path.length === 0 ? parseDocument(text).contents : parseDocument(text).getIn(path, true);
  return isMap(node) ? node : null;
}

function pairOf(map: YAMLMap, key: string): Pair | undefined {
  return map.items.find((p) => isScalar(p.key) && p.key.value === key);
}

/** Sets the plain scalar at `path` (adding the key to its map when missing; adding the map at the end). */
export function setScalarText(text: string, path: readonly string[], value: string | number): string {
  const key = path[path.length - 1] as string;
  const parentPath = path.slice(0, -1);
  const parent = mapAt(text, parentPath);
  if (!parent) {
    if (parentPath.length !== 1) throw new Error(`no map at ${parentPath.join('.')}`);
    const tail = text.endsWith('\n') || text === '' ? '' : '\n';
    return `${text}${tail}${parentPath[0]}:\n  ${key}: ${value}\n`;
  }
  const pair = pairOf(parent, key);
  if (pair && isScalar(pair.value) && pair.value.range) {
    const [from, to] = pair.value.range;
    return `${text.slice(0, from)}${value}${text.slice(to)}`;
  }
  const first = parent.items[0];
  const range = parent.range;
  if (!range) throw new Error(`no position for ${parentPath.join('.')}`);
  if (parent.flow) {
    const close = text.lastIndexOf('}', range[1]);
    const empty = parent.items.length === 0;
    return `${text.slice(0, close).trimEnd()}${empty ? ' ' : ', '}${key}: ${value} ${text.slice(close)}`;
  }
  const firstKey = first && isScalar(first.key) ? first.key.range : undefined;
  if (!firstKey) throw new Error(`no position for ${parentPath.join('.')}`);
  const indent = ' '.repeat(firstKey[0] - lineStart(text, firstKey[0]));
  const at = lineEnd(text, firstKey[0]);
  return `${text.slice(0, at)}${indent}${key}: ${value}\n${text.slice(at)}`;
}

/** Removes the key at `path` with its value (its whole line in a block map); no-op when absent. */
export function deleteKeyText(text: string, path: readonly string[]): string {
  const parent = mapAt(text, path.slice(0, -1));
  const pair = parent && pairOf(parent, path[path.length - 1] as string);
  if (!parent || !pair || !isScalar(pair.key) || !pair.key.range) return text;
  const from = pair.key.range[0];
  const valueEnd = isScalar(pair.value) && pair.value.range ? pair.value.range[1] : pair.key.range[1];
  if (parent.flow) {
    // `a, key: v` -> `a`; `key: v, b` -> `b`
    const before = text.slice(0, from).replace(/,\s*$/, '');
    const after = text.slice(valueEnd);
    return before.length < from ? `${before}${after}` : `${before}${after.replace(/^\s*,\s*/, '')}`;
  }
  return `${text.slice(0, lineStart(text, from))}${text.slice(lineEnd(text, valueEnd))}`;
}

/** Removes the item of the sequence at `path` whose `name` is `name`, with the lines it spans. */
export function deleteNamedItemText(text: string, path: readonly string[], name: string): string {
  const seq = parseDocument(text).getIn(path, true);
  if (!isSeq(seq)) throw new Error(`no list at ${path.join('.')}`);
  const item = seq.items.find((i) => isMap(i) && i.get('name') === name);
  if (!isMap(item) || !item.range) throw new Error(`no item named ${name} in ${path.join('.')}`);
  if (seq.flow) throw new Error(`${path.join('.')} is a flow list; edit it by hand`);
  // From the `- ` that opens it to the end of its last line (an inline comment there goes too).
  const from = lineStart(text, item.range[0]);
  const to = lineEnd(text, Math.max(item.range[0], item.range[1] - 1));
  return `${text.slice(0, from)}${text.slice(to)}`;
}

/**
 * Appends `item` (a one-line flow value, e.g. `{ name: a, all: true }`) to the list at `path`,
 * adding the list (and its parent map, at the end of the file) when missing.
 */
export function appendItemText(text: string, path: readonly string[], item: string): string {
  const doc = parseDocument(text);
  const seq = doc.getIn(path, true);
  if (isSeq(seq) && seq.range) {
    if (seq.flow) {
      const close = text.lastIndexOf(']', seq.range[1]);
      return `${text.slice(0, close).trimEnd()}${seq.items.length === 0 ? '' : ','} ${item} ${text.slice(close)}`;
    }
    const first = seq.items[0] as { range?: [number, number, number] } | undefined;
    const last = seq.items[seq.items.length - 1] as { range?: [number, number, number] } | undefined;
    if (!first?.range || !last?.range) throw new Error(`no position for ${path.join('.')}`);
    const dash = text.lastIndexOf('-', first.range[0]);
    const indent = ' '.repeat(dash - lineStart(text, dash));
    const at = lineEnd(text, Math.max(last.range[0], last.range[1] - 1));
    return `${text.slice(0, at)}${indent}- ${item}\n${text.slice(at)}`;
  }
  if (seq !== undefined && seq !== null) throw new Error(`${path.join('.')} is not a list`);
  const key = path[path.length - 1] as string;
  const parentPath = path.slice(0, -1);
  const parent = mapAt(text, parentPath);
  if (parent && !parent.flow && parent.range && parent.items.length > 0) {
    const firstKey = parent.items[0]?.key;
    const keyRange = isScalar(firstKey) ? firstKey.range : undefined;
    if (!keyRange) throw new Error(`no position for ${parentPath.join('.')}`);
    const indent = ' '.repeat(keyRange[0] - lineStart(text, keyRange[0]));
    const at = lineEnd(text, Math.max(parent.range[0], parent.range[1] - 1));
    return `${text.slice(0, at)}${indent}${key}:\n${indent}  - ${item}\n${text.slice(at)}`;
  }
  if (parent || parentPath.length !== 1)
    throw new Error(`${parentPath.join('.')} cannot be extended here; edit it by hand`);
  const tail = text.endsWith('\n') || text === '' ? '' : '\n';
  return `${text}${tail}${parentPath[0]}:\n  ${key}:\n    - ${item}\n`;
}
