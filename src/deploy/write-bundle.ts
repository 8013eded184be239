import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PgreplError } from '../errors.js';
import type { BundleFile } from './render-host-bundle.js';

/** Writes a bundle under `out`; refuses a non-empty directory unless `force` (then overwrites files). */
export function writeBundle(out: string, files: readonly BundleFile[], force: boolean): void {
  if (existsSync(out) && readdirSync(out).length > 0 && !force) {
    throw new PgreplError(
      'E_OUTPUT_NOT_EMPTY',
      `${out} is not empty; pick another --out, or pass --force to overwrite its files`,
    );
  }
  for (const f of files) {
    const path = join(out, f.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, f.content, { mode: f.mode });
    chmodSync(path, f.mode);
  }
}
