import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InstanceEnv } from './instance-control.js';
import { quoteSetting } from './render-postgresql-conf.js';

/** A setting the server binary rejects, with its own words. */
export interface SettingProblem {
  readonly name: string;
  readonly message: string;
}

/**
 * Asks the PostgreSQL binary in use whether it accepts `settings` (name, type, range, enum value),
 * before any of them is written to a node: `postgres -C` reads them from a scratch
 * postgresql.conf in a directory of its own and reports each line it rejects, as a server start
 * would, but without a cluster. Unknown names are reported first (PostgreSQL checks values only
 * once every name is known), so a second look checks the values of the known ones.
 */
export async function checkSettings(
  env: InstanceEnv,
  settings: Readonly<Record<string, string>>,
): Promise<SettingProblem[]> {
  const entries = Object.entries(settings);
  if (entries.length === 0) return [];
  const dir = mkdtempSync(join(tmpdir(), 'pgrepl-settings-'));
  try {
    if (env.runAs) chownSync(dir, env.runAs.uid, env.runAs.gid);
    const unknown = await look(env, dir, entries);
    const names = new Set(unknown.map((p) => p.name));
    const known = entries.filter(([k]) => !names.has(k));
    return names.size > 0 && known.length > 0 ? [...unknown, ...(await look(env, dir, known))] : unknown;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function look(env: InstanceEnv, dir: string, entries: [string, string][]): Promise<SettingProblem[]> {
  writeFileSync(
    join(dir, 'postgresql.conf'),
    entries.map(([k, v]) => `${k} = ${quoteSetting(v)}\n`).join(''),
  );
  const r = await env.runner.run(join(env.bins.binDir, 'postgres'), ['-D', dir, '-C', 'port'], {
    runAs: env.runAs,
    timeoutMs: 30_000,
  });
  if (r.code === 0) return [];
  return parseSettingProblems(r.stderr, dir);
}

/** The problems in a server's log lines about its configuration file, one per setting named. */
export function parseSettingProblems(log: string, dir: string): SettingProblem[] {
  const problems = new Map<string, string>();
  let last: string | undefined;
  for (const line of log.split('\n')) {
    const text = /\b(?:LOG|ERROR|FATAL|HINT):\s+(.*)$/.exec(line)?.[1];
    if (text === undefined) continue;
    if (line.includes('HINT:') && last !== undefined) {
      problems.set(last, `${problems.get(last)} (${text.replace(/\.$/, '')})`);
      continue;
    }
    const name = /parameter "([^"]+)"/.exec(text)?.[1];
    last = name;
    if (name === undefined || problems.has(name)) continue;
    problems.set(
      name,
      text.replace(` in file "${join(dir, 'postgresql.conf')}"`, '').replace(/ line \d+$/, ''),
    );
  }
  return [...problems].map(([name, message]) => ({ name, message }));
}
