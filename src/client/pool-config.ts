import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { ClusterPoolError } from './client-errors.js';
import { parseClusterUrl } from './cluster-url.js';

/** The nodes given, and the pg.Pool settings of every node: from `url` or `hosts`, and the pool options. */
export function nodeConfigs(
  url: string | undefined,
  hosts: readonly (string | { readonly host: string; readonly port: number })[] | undefined,
  config: pg.PoolConfig,
  agents: boolean,
): { base: pg.PoolConfig; hosts: { host: string; port: number }[] } {
  if (url !== undefined) {
    let u;
    try {
      u = parseClusterUrl(url);
    } catch (err) {
      throw new ClusterPoolError('E_CLIENT_OPTIONS', `url: ${(err as Error).message}`, { cause: err });
    }
    const ssl =
      u.sslmode === 'disable'
        ? undefined
        : {
            rejectUnauthorized: u.sslmode !== 'require',
            ...(u.sslrootcert ? { ca: readCa(u.sslrootcert) } : {}),
            // verify-ca: the chain, not the name.
            ...(u.sslmode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
          };
    const base = {
      ...(u.user === undefined ? {} : { user: u.user }),
      ...(u.password === undefined ? {} : { password: u.password }),
      ...(u.database === undefined ? {} : { database: u.database }),
      ...(ssl ? { ssl } : {}),
      ...config,
    };
    return { base, hosts: [...u.hosts] };
  }
  if ((!hosts || hosts.length === 0) && !agents)
    throw new ClusterPoolError(
      'E_CLIENT_OPTIONS',
      'give the nodes: url (as `pgrepl url` prints it), hosts, or the agents',
    );
  return { base: config, hosts: (hosts ?? []).map((h) => (typeof h === 'string' ? hostPort(h) : h)) };
}

function hostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(s);
  const port = Number(m?.[3] ?? 5432);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new ClusterPoolError('E_CLIENT_OPTIONS', `hosts: not host:port: ${JSON.stringify(s)}`);
  return { host: m[1] ?? m[2] ?? '', port };
}

function readCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ClusterPoolError('E_CLIENT_OPTIONS', `sslrootcert ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
