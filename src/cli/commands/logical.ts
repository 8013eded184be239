import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { Document, parse } from 'yaml';
import { PgreplError } from '../../errors.js';
import { appendItemText, deleteKeyText, deleteNamedItemText } from '../../cluster-spec/edit-yaml-text.js';
import { EMBEDDED_SOURCE, loadSpec } from '../../cluster-spec/load-spec.js';
import { parseSpec } from '../../cluster-spec/parse-spec.js';
import { PREFLIGHT_CODES } from '../../cluster-spec/preflight-codes.js';
import type { GlobalOptions } from '../command-context.js';
import { runUp } from './up.js';

export interface PublishOptions {
  tables?: string;
  all?: boolean;
  database?: string;
  allow?: string[];
  skipCheck?: string[];
  json?: boolean;
}

export interface SubscribeOptions {
  publication: string;
  from: string;
  passwordEnv?: string;
  passwordFile?: string;
  database?: string;
  copy?: boolean;
  skipCheck?: string[];
  json?: boolean;
}

/** `logical publish NAME --tables T,... | --all`: the publication added to the spec, then `up`. */
export async function runPublish(g: GlobalOptions, name: string, o: PublishOptions): Promise<number> {
  if ((o.tables === undefined) === (o.all !== true))
    throw new PgreplError('E_USAGE', 'give --tables T[,T...] or --all, one of them');
  const item: Record<string, unknown> = {
    name,
    ...(o.database === undefined ? {} : { database: o.database }),
    ...(o.all === true ? { all: true } : { tables: splitList(o.tables ?? '') }),
    ...(o.allow && o.allow.length > 0 ? { allow: o.allow } : {}),
    ...skipChecks(o.skipCheck),
  };
  return addAndApply(g, ['logical', 'publications'], [item], o.json === true);
}

/** `logical subscribe NAME --publication P --from SPEC|URL`: the subscription added to the spec, then `up`. */
export async function runSubscribe(g: GlobalOptions, name: string, o: SubscribeOptions): Promise<number> {
  const url = /^postgres(ql)?:\/\//.test(o.from);
  if (url && (o.passwordEnv === undefined) === (o.passwordFile === undefined))
    throw new PgreplError(
      'E_USAGE',
      "--from URL needs the publisher's password from --password-env VAR or --password-file FILE (never in the URL)",
    );
  if (!url && (o.passwordEnv !== undefined || o.passwordFile !== undefined))
    throw new PgreplError(
      'E_USAGE',
      "--password-env and --password-file go with --from URL; a pgrepl cluster's spec brings its own password",
    );
  const specFile = specPath(g);
  const from = url
    ? {
        url: o.from,
        password: o.passwordEnv !== undefined ? { env: o.passwordEnv } : { file: abs(o.passwordFile ?? '') },
      }
    : { spec: relativeToSpec(specFile, o.from) };
  const item: Record<string, unknown> = {
    name,
    ...(o.database === undefined ? {} : { database: o.database }),
    publication: o.publication,
    from,
    ...(o.copy === false ? { copyData: false } : {}),
    ...skipChecks(o.skipCheck),
  };
  return addAndApply(g, ['logical', 'subscriptions'], [item], o.json === true);
}

const splitList = (s: string) =>
  s
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');

const abs = (p: string) => resolve(process.cwd(), p);

function skipChecks(codes: string[] | undefined): { skipChecks?: string[] } {
  if (!codes || codes.length === 0) return {};
  const unknown = codes.filter((c) => !(PREFLIGHT_CODES as readonly string[]).includes(c));
  if (unknown.length > 0)
    throw new PgreplError(
      'E_USAGE',
      `--skip-check ${unknown.join(', ')}: not a check; they are ${PREFLIGHT_CODES.join(', ')}`,
    );
  return { skipChecks: codes };
}

/** The spec file this command edits: -c, else ./pgrepl.yaml; never the embedded default. */
function specPath(g: GlobalOptions): string {
  return abs(g.config ?? 'pgrepl.yaml');
}

/** A path given on the command line, as the spec file resolves it: relative to the spec's directory. */
function relativeToSpec(specFile: string, path: string): string {
  const target = abs(path);
  return isAbsolute(path) ? target : relative(dirname(specFile), target) || '.';
}

/**
 * Adds `items` to the list at `path` of the spec file (its other lines untouched), checks the
 * result and runs `up`; when `up` refuses (the pre-flight check, a publisher it cannot reach), the
 * file is put back as it was, so that a refused command changes nothing.
 */
export async function addAndApply(
  g: GlobalOptions,
  path: readonly string[],
  items: readonly Record<string, unknown>[],
  json: boolean,
): Promise<number> {
  const current = await loadSpec({
    cwd: process.cwd(),
    env: process.env,
    ...(g.config ? { file: g.config } : {}),
  });
  if (current.source === EMBEDDED_SOURCE)
    throw new PgreplError('E_USAGE', 'no pgrepl.yaml here to add it to: `pgrepl init` writes one');
  const file = current.source;
  const kind = path[path.length - 1] === 'publications' ? 'publication' : 'subscription';
  const list = kind === 'publication' ? current.logical.publications : current.logical.subscriptions;
  const before = readFileSync(file, 'utf8');
  let text = before;
  for (const item of items) {
    const database = (item['database'] as string | undefined) ?? 'postgres';
    if (list.some((x) => x.name === item['name'] && x.database === database))
      throw new PgreplError(
        'E_USAGE',
        `${file} already has ${kind} ${String(item['name'])} in database ${database}; edit it there and run \`pgrepl up\``,
      );
    const flow = new Document(item, { flow: true }).toString({ lineWidth: 0 }).trim();
    text = appendItemText(text, path, flow);
  }
  parseSpec(text, file, dirname(file));
  writeFileSync(file, text);
  try {
    // A publication's wal_level is a restart: through a switchover, as a rolling restart should.
    return await runUp(
      { ...g, config: file },
      { json },
      { create: true, ...(kind === 'publication' ? { restartPrimary: 'switchover' as const } : {}) },
    );
  } catch (err) {
    writeFileSync(file, before);
    throw err;
  }
}

/**
 * Takes every publication called `name` out of the spec file (the list, and `logical:`, when
 * nothing else is left in them); its other lines stay as they were.
 */
export function removePublications(file: string, name: string): void {
  let text = readFileSync(file, 'utf8');
  const named = () =>
    (
      (parse(text) as { logical?: { publications?: { name?: string }[] } } | null)?.logical?.publications ??
      []
    ).filter((p) => p.name === name).length;
  for (let left = named(); left > 0; left -= 1)
    text = deleteNamedItemText(text, ['logical', 'publications'], name);
  const doc = parse(text) as { logical?: Record<string, unknown> | null } | null;
  if (doc?.logical && (doc.logical['publications'] ?? null) === null && 'publications' in doc.logical)
    text = deleteKeyText(text, ['logical', 'publications']);
  const after = parse(text) as { logical?: unknown } | null;
  if (after && 'logical' in after && after.logical === null) text = deleteKeyText(text, ['logical']);
  parseSpec(text, file, dirname(file));
  writeFileSync(file, text);
}
