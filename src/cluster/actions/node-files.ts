import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunAs } from '../../postgres/command-runner.js';
import { writeOwnedFile } from '../../postgres/owned-paths.js';
import type { NodeConfig } from '../decide/render-node-config.js';

/** Settings that live only in pgrepl's postgresql.conf; a copy in postgresql.auto.conf would override it. */
const OWNED_AUTO_CONF_KEYS = ['primary_conninfo', 'primary_slot_name'];

/**
 * Writes a node's rendered postgresql.conf and pg_hba.conf, and removes from postgresql.auto.conf
 * the lines pg_basebackup -R (or a copy from another node) left for settings pgrepl owns.
 */
export function writeNodeFiles(dataDir: string, config: NodeConfig, runAs: RunAs | undefined): void {
  writeOwnedFile(join(dataDir, 'postgresql.conf'), config.postgresqlConf, 0o600, runAs);
  writeOwnedFile(join(dataDir, 'pg_hba.conf'), config.pgHba, 0o600, runAs);
  const auto = join(dataDir, 'postgresql.auto.conf');
  if (!existsSync(auto)) return;
  const before = readFileSync(auto, 'utf8');
  // With backup: pgrepl renders restore_command too; pgBackRest's restore writes its own, naming the
  // directory it restored into (a clone's temporary one).
  const owned = [
    ...OWNED_AUTO_CONF_KEYS,
    ...('restore_command' in config.settings ? ['restore_command'] : []),
  ];
  const after = before
    .split('\n')
    .filter((line) => !owned.some((k) => new RegExp(`^\\s*${k}\\s*=`).test(line)))
    .join('\n');
  if (after !== before) writeOwnedFile(auto, after, 0o600, runAs);
}

/**
 * Removes the recovery target a point-in-time restore wrote into postgresql.auto.conf (pgBackRest
 * writes it there): kept, it would stop a later standby of this node's data at the same point.
 */
export function clearRecoveryTargets(dataDir: string, runAs: RunAs | undefined): void {
  const auto = join(dataDir, 'postgresql.auto.conf');
  if (!existsSync(auto)) return;
  const before = readFileSync(auto, 'utf8');
  const after = before
    .split('\n')
    .filter((line) => !/^\s*recovery_target\w*\s*=/.test(line))
    .join('\n');
  if (after !== before) writeOwnedFile(auto, after, 0o600, runAs);
}
