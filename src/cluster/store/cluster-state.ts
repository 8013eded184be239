import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RunAs } from '../../postgres/command-runner.js';
import type { RecordedInstallation } from '../../postgres/find-binaries.js';
import { ensureOwnedDir, writeOwnedFile } from '../../postgres/owned-paths.js';

/** What pgrepl remembers between commands, in <stateDir>/state.json. */
export interface ClusterState {
  readonly version: 1;
  readonly cluster: string;
  /** Directories pgrepl created; the only ones it will ever delete. */
  readonly createdDirs: readonly string[];
  /** Former primaries that were fenced by a failover: never started as a primary again, only rejoined. */
  readonly fenced: readonly string[];
  /** The PostgreSQL installation `up` made the cluster with; later commands keep using it. */
  readonly installation?: RecordedInstallation;
}

export const statePath = (stateDir: string) => join(stateDir, 'state.json');

/**
 * One file per directory pgrepl created, naming it: agents on one machine create data directories
 * at the same time, and a read-modify-write of state.json by each would lose all but one of them.
 */
export const createdDirsPath = (stateDir: string) => join(stateDir, 'created');

function createdMarkers(stateDir: string): string[] {
  try {
    // Markers only: never a temporary file of a write under way, which may hold half a path.
    return readdirSync(createdDirsPath(stateDir))
      .filter((f) => /^[0-9a-f]{32}$/.test(f))
      .map((f) => readFileSync(join(createdDirsPath(stateDir), f), 'utf8').trim());
  } catch {
    return [];
  }
}

export function readState(stateDir: string, cluster: string): ClusterState {
  const markers = createdMarkers(stateDir);
  try {
    const parsed = JSON.parse(readFileSync(statePath(stateDir), 'utf8')) as Partial<ClusterState>;
    return {
      version: 1,
      cluster: parsed.cluster ?? cluster,
      createdDirs: [...new Set([...(parsed.createdDirs ?? []), ...markers])],
      fenced: parsed.fenced ?? [],
      ...(parsed.installation ? { installation: parsed.installation } : {}),
    };
  } catch {
    return { version: 1, cluster, createdDirs: markers, fenced: [] };
  }
}

/** Records that pgrepl created `dir`; written before the directory is, so a crash cannot orphan it. */
export function recordCreatedDir(
  stateDir: string,
  cluster: string,
  dir: string,
  runAs: RunAs | undefined,
): void {
  if (readState(stateDir, cluster).createdDirs.includes(dir)) return;
  ensureOwnedDir(createdDirsPath(stateDir), 0o700, runAs);
  const name = createHash('sha256').update(dir).digest('hex').slice(0, 32);
  writeOwnedFile(join(createdDirsPath(stateDir), name), `${dir}\n`, 0o600, runAs);
}

function writeState(stateDir: string, state: ClusterState, runAs: RunAs | undefined): void {
  writeOwnedFile(statePath(stateDir), `${JSON.stringify(state, null, 2)}\n`, 0o600, runAs);
}

/** Marks a node fenced (a failover left it behind) or clears the mark (a rejoin brought it back). */
export function setFenced(
  stateDir: string,
  cluster: string,
  node: string,
  fenced: boolean,
  runAs: RunAs | undefined,
): void {
  const state = readState(stateDir, cluster);
  const others = state.fenced.filter((n) => n !== node);
  writeState(stateDir, { ...state, fenced: fenced ? [...others, node] : others }, runAs);
}

/** Records the installation the cluster runs on (by `up`), unless state.json already says so. */
export function recordInstallation(
  stateDir: string,
  cluster: string,
  installation: RecordedInstallation,
  runAs: RunAs | undefined,
): void {
  const state = readState(stateDir, cluster);
  const had = state.installation;
  if (
    had?.binDir === installation.binDir &&
    had.stamp === installation.stamp &&
    had.version === installation.version
  )
    return;
  writeState(stateDir, { ...state, installation }, runAs);
}
