import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../test/helpers/test-cluster.js';

/**
 * Puts `section` (which opens with `begin` and ends with `end`, the markers) into BENCHMARKS.md: in
 * place of the section between those markers, or at the end the first time.
 */
export function writeBenchmarksSection(begin: string, end: string, section: string): void {
  const file = join(REPO, 'BENCHMARKS.md');
  const text = readFileSync(file, 'utf8');
  const at = text.indexOf(begin);
  writeFileSync(
    file,
    at === -1
      ? `${text.trimEnd()}\n\n${section}\n`
      : `${text.slice(0, at)}${section}${text.slice(text.indexOf(end) + end.length)}`,
  );
}
