import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunAs } from '../../postgres/command-runner.js';
import type { RecordedInstallation } from '../../postgres/find-binaries.js';
import { writeOwnedFile } from '../../postgres/owned-paths.js';

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

export function readState(stateDir: string, cluster: string): ClusterState {
  try {
    const parsed = JSON.parse(readFileSync(statePath(stateDir), 'utf8')) as Partial<ClusterState>;
    return {
      version: 1,
      cluster: parsed.cluster ?? cluster,
      createdDirs: parsed.createdDirs ?? [],
      fenced: parsed.fenced ?? [],
      ...(parsed.installation ? { installation: parsed.installation } : {}),
    };
  } catch {
    return { version: 1, cluster, createdDirs: [], fenced: [] };
  }
}

/** Records that pgrepl created `dir`; written before the directory is, so a crash cannot orphan it. */
export function recordCreatedDir(
  stateDir: string,
  cluster: string,
  dir: string,
  runAs: RunAs | undefined,
): void {
  const state = readState(stateDir, cluster);
  if (state.createdDirs.includes(dir)) return;
  writeState(stateDir, { ...state, createdDirs: [...state.createdDirs, dir] }, runAs);
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
