import { existsSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PgreplError } from '../../errors.js';
import { DEFAULT_SPEC_FILE } from '../../cluster-spec/load-spec.js';
import { parseSpec } from '../../cluster-spec/parse-spec.js';
import { renderSpecTemplate, TEMPLATE_DEFAULTS } from '../../cluster-spec/render-spec-template.js';

export interface InitOptions {
  name?: string;
  nodes?: string;
  host?: string;
  basePort?: string;
  dir?: string;
  output?: string;
  force?: boolean;
}

/** Writes a commented spec; refuses to overwrite one unless --force. */
export function runInit(o: InitOptions): number {
  const file = resolve(o.output ?? DEFAULT_SPEC_FILE);
  const nodes = intOption('--nodes', o.nodes, TEMPLATE_DEFAULTS.nodes, 1, 16);
  if (o.host !== undefined && ['0.0.0.0', '::', '*'].includes(o.host))
    throw new PgreplError(
      'E_USAGE',
      `--host is the address every node listens on and is reached at; ${o.host} is no address a replica or a client can connect to: give this machine's address`,
    );
  const basePort = intOption('--base-port', o.basePort, TEMPLATE_DEFAULTS.basePort, 1024, 65535 - nodes);
  const text = renderSpecTemplate({
    name: o.name ?? TEMPLATE_DEFAULTS.name,
    nodes,
    host: o.host ?? TEMPLATE_DEFAULTS.host,
    basePort,
    dir: o.dir ?? TEMPLATE_DEFAULTS.dir,
  });
  // Validate before writing: a bad --name or --host must not leave a broken file behind.
  parseSpec(text, `${file} (to be written)`, process.cwd());
  if (!existsSync(dirname(file)))
    throw new PgreplError('E_USAGE', `${dirname(file)} does not exist; create it first, or pick another -o`);
  if (existsSync(file) && !o.force) {
    throw new PgreplError('E_SPEC_EXISTS', `${file} already exists; pass --force to overwrite it`);
  }
  writeFileSync(file, text, { mode: 0o644 });
  process.stdout.write(
    `wrote ${file} (${nodes} node${nodes === 1 ? '' : 's'}); edit it, then run \`pgrepl up\`\n`,
  );
  return 0;
}

function intOption(
  flag: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new PgreplError('E_USAGE', `${flag} must be a whole number from ${min} to ${max}, not "${raw}"`);
  }
  return n;
}
