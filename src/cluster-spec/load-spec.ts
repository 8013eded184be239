import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { PgreplError } from '../errors.js';
import type { ClusterSpec } from './cluster-spec.js';
import { renderSpecTemplate, TEMPLATE_DEFAULTS } from './render-spec-template.js';
import { readCachedSpec, specCacheDir, writeCachedSpec } from './spec-cache.js';

export const DEFAULT_SPEC_FILE = 'pgrepl.yaml';
export const EMBEDDED_SOURCE = '(embedded default)';

/**
 * Finds and loads the spec: `-c FILE` if given, else ./pgrepl.yaml, else the embedded default.
 * Throws E_SPEC_* with file:line:col; changes nothing but the parse cache. An unchanged spec comes
 * from that cache, and the YAML parser and the schema are then not even loaded.
 */
export async function loadSpec(opts: {
  file?: string;
  cwd: string;
  env?: Readonly<Record<string, string | undefined>>;
}): Promise<ClusterSpec> {
  const { text, source, baseDir } = findSpec(opts);
  const cacheDir = specCacheDir(opts.env ?? {});
  const cached = readCachedSpec(cacheDir, text, source, baseDir);
  if (cached) return cached;
  const { parseSpec } = await import('./parse-spec.js');
  const spec = parseSpec(text, source, baseDir);
  writeCachedSpec(cacheDir, text, spec, baseDir);
  return spec;
}

/** The text a loaded spec was parsed from (its file, or the embedded default). */
export function specText(spec: Pick<ClusterSpec, 'source'>): string {
  return spec.source === EMBEDDED_SOURCE
    ? renderSpecTemplate(TEMPLATE_DEFAULTS)
    : readFileSync(spec.source, 'utf8');
}

/** The spec's text; a directory or an unreadable file is E_SPEC_NOT_FOUND that says which. */
function readSpecFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'EISDIR' ? 'is a directory' : 'cannot be read';
    throw new PgreplError(
      'E_SPEC_NOT_FOUND',
      `spec file ${file} ${why} (${(err as Error).message}); give the spec file itself, e.g. -c pgrepl.yaml`,
      { cause: err },
    );
  }
}

function findSpec(opts: { file?: string; cwd: string }): { text: string; source: string; baseDir: string } {
  if (opts.file !== undefined) {
    const file = resolve(opts.cwd, opts.file);
    if (!existsSync(file)) {
      throw new PgreplError(
        'E_SPEC_NOT_FOUND',
        `spec file ${file} does not exist; write one with \`pgrepl init -o ${opts.file}\``,
      );
    }
    return { text: readSpecFile(file), source: file, baseDir: dirname(file) };
  }
  const found = join(opts.cwd, DEFAULT_SPEC_FILE);
  if (existsSync(found)) return { text: readSpecFile(found), source: found, baseDir: opts.cwd };
  return { text: renderSpecTemplate(TEMPLATE_DEFAULTS), source: EMBEDDED_SOURCE, baseDir: opts.cwd };
}
