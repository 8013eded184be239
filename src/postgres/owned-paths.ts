import { chownSync, chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, parse } from 'node:path';
import { PgreplError } from '../errors.js';
import type { RunAs } from './command-runner.js';

/** Creates `dir` (and missing parents) with `mode`, owned by the run-as user when there is one. */
export function ensureOwnedDir(dir: string, mode: number, runAs: RunAs | undefined): void {
  mkdirSync(dir, { recursive: true, mode });
  chmodSync(dir, mode);
  if (runAs) chownSync(dir, runAs.uid, runAs.gid);
}

/**
 * Writes a file atomically (temp + rename) with `mode`, owned by the run-as user when there is one.
 * A file that already has this content, mode and owner is left alone, so re-running changes nothing.
 */
export function writeOwnedFile(path: string, content: string, mode: number, runAs: RunAs | undefined): void {
  if (isAlready(path, content, mode, runAs)) return;
  const tmp = `${path}.pgrepl-tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  if (runAs) chownSync(tmp, runAs.uid, runAs.gid);
  renameSync(tmp, path);
}

function isAlready(path: string, content: string, mode: number, runAs: RunAs | undefined): boolean {
  try {
    const st = statSync(path);
    if ((st.mode & 0o777) !== mode || (runAs && st.uid !== runAs.uid)) return false;
    return readFileSync(path, 'utf8') === content;
  } catch {
    return false;
  }
}

/**
 * Refuses early, with the fix, when the run-as user cannot enter every existing ancestor of `path`:
 * PostgreSQL would otherwise fail later with a bare "permission denied". Changes nothing.
 */
export function assertReachable(path: string, runAs: RunAs | undefined): void {
  if (!runAs) return;
  const root = parse(path).root;
  let current = dirname(path);
  const ancestors: string[] = [];
  while (current !== root && current.length > root.length) {
    ancestors.unshift(current);
    current = dirname(current);
  }
  for (const dir of [root, ...ancestors]) {
    let st;
    try {
      st = statSync(dir);
    } catch {
      return; // does not exist yet: pgrepl creates it, owned by the run-as user
    }
    const canEnter =
      st.uid === runAs.uid
        ? (st.mode & 0o100) !== 0
        : st.gid === runAs.gid
          ? (st.mode & 0o010) !== 0
          : (st.mode & 0o001) !== 0;
    if (!canEnter) {
      const mode = (st.mode & 0o777).toString(8);
      throw new PgreplError(
        'E_DIR_NOT_REACHABLE',
        `PostgreSQL runs as OS user "${runAs.name}" (pgrepl was started as root), and "${runAs.name}" cannot enter ${dir} ` +
          `(mode ${mode}), which holds ${path}. Put stateDir/dataDir under a directory it can reach ` +
          `(e.g. /var/lib/pgrepl), or let it in: \`chmod o+x ${dir}\`.`,
      );
    }
  }
}
