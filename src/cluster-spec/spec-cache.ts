import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterSpec } from './cluster-spec.js';

/**
 * Specs already parsed and validated, one file per spec location, under $XDG_CACHE_HOME/pgrepl
 * (else ~/.cache/pgrepl). Loading the YAML parser and the schema library costs ~150 ms of every
 * command's start, while the spec rarely changes. An entry counts only for the same text, source
 * and base dir, and the same build of pgrepl's spec code; anything unreadable is a miss. Specs
 * hold no secrets (passwords come from env or files), and the files are 0600 all the same.
 */
export function specCacheDir(env: Readonly<Record<string, string | undefined>>): string {
  const base = env['XDG_CACHE_HOME'] || join(env['HOME'] || homedir(), '.cache');
  return join(base, 'pgrepl');
}

interface Entry {
  key: string;
  spec: ClusterSpec;
}

export function readCachedSpec(
  cacheDir: string,
  text: string,
  source: string,
  baseDir: string,
): ClusterSpec | undefined {
  try {
    const entry = JSON.parse(readFileSync(entryPath(cacheDir, source, baseDir), 'utf8')) as Entry;
    return entry.key === entryKey(text, source, baseDir) ? entry.spec : undefined;
  } catch {
    return undefined;
  }
}

/** Best effort: a cache that cannot be written only makes the next command parse again. */
export function writeCachedSpec(cacheDir: string, text: string, spec: ClusterSpec, baseDir: string): void {
  try {
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    const path = entryPath(cacheDir, spec.source, baseDir);
    const tmp = `${path}.${process.pid}.tmp`;
    const entry: Entry = { key: entryKey(text, spec.source, baseDir), spec };
    writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
    renameSync(tmp, path);
    prune(cacheDir);
  } catch {
    // read-only home, full disk: parse every time
  }
}

/** Keeps the newest MAX_ENTRIES entries: one per spec location, so old ones are specs gone away. */
const MAX_ENTRIES = 64;

function prune(cacheDir: string): void {
  const entries = readdirSync(cacheDir)
    .filter((f) => /^spec-[0-9a-f]+\.json$/.test(f))
    .map((f) => ({ path: join(cacheDir, f), at: statSync(join(cacheDir, f)).mtimeMs }))
    .sort((a, b) => b.at - a.at);
  for (const e of entries.slice(MAX_ENTRIES)) rmSync(e.path, { force: true });
}

const entryPath = (cacheDir: string, source: string, baseDir: string) =>
  join(cacheDir, `spec-${sha256(`${source}\0${baseDir}`).slice(0, 32)}.json`);

const entryKey = (text: string, source: string, baseDir: string) =>
  sha256(`${codeStamp()}\0${source}\0${baseDir}\0${text}`);

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

let stamp: string | undefined;

/**
 * Changes whenever any module of the spec layer is rebuilt, so a new pgrepl never reads an old shape:
 * the modules beside this one (tsc's output), or the bundle this one is part of.
 */
function codeStamp(): string {
  if (stamp !== undefined) return stamp;
  const dir = dirname(fileURLToPath(import.meta.url));
  stamp = readdirSync(dir)
    .filter((f) => f.endsWith('.js') || f.endsWith('.mjs'))
    .sort()
    .map((f) => {
      const st = statSync(join(dir, f));
      return `${f}:${st.size}:${st.mtimeMs}`;
    })
    .join('|');
  return stamp;
}
