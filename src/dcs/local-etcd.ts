import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { PgreplError } from '../errors.js';
import { requestJson } from './http-json.js';
import { monotonicNow } from '../monotonic-now.js';

/** A single-member etcd on loopback, for `up --ha` on one machine and for tests. */
export interface LocalEtcd {
  readonly dataDir: string;
  readonly clientPort: number;
  readonly peerPort: number;
}

export const localEtcdUrl = (e: Pick<LocalEtcd, 'clientPort'>) => `http://127.0.0.1:${e.clientPort}`;

/**
 * etcd's arguments. Heartbeats of 50 ms and an election timeout of 500 ms let etcd grant leases of
 * 1 s (its minimum TTL is 1.5 election timeouts); its defaults would make the fast profile's 2 s
 * lease the floor. A single member has no one to elect, so the short timeout costs nothing.
 */
export function localEtcdArgs(e: LocalEtcd): string[] {
  const client = localEtcdUrl(e);
  const peer = `http://127.0.0.1:${e.peerPort}`;
  return [
    '--name=pgrepl',
    `--data-dir=${e.dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=pgrepl=${peer}`,
    '--heartbeat-interval=50',
    '--election-timeout=500',
    '--log-level=warn',
  ];
}

/** The etcd binary: PGREPL_ETCD_BIN, else `etcd` on PATH (Debian's etcd-server puts it in /usr/bin). */
export function findEtcd(env: Readonly<Record<string, string | undefined>>): string {
  const given = env['PGREPL_ETCD_BIN'];
  if (given) {
    if (!existsSync(given)) throw new PgreplError('E_NO_ETCD', `PGREPL_ETCD_BIN=${given} does not exist`);
    return given;
  }
  for (const dir of [...(env['PATH'] ?? '').split(delimiter), '/usr/bin', '/usr/local/bin']) {
    const candidate = join(dir, 'etcd');
    if (dir !== '' && existsSync(candidate)) return candidate;
  }
  throw new PgreplError(
    'E_NO_ETCD',
    'no etcd binary found: install it (Debian: `apt-get install etcd-server`), set PGREPL_ETCD_BIN, ' +
      'or list an existing etcd under ha.etcd in the spec',
  );
}

/** Waits until etcd at `url` answers /health with health true; E_ETCD with the last answer when it does not. */
export async function waitEtcdHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = monotonicNow() + timeoutMs;
  let last = 'no answer';
  while (monotonicNow() < deadline) {
    try {
      const body = (await requestJson(`${url}/health`, null, AbortSignal.timeout(500))).body as {
        health?: string;
      };
      if (body.health === 'true') return;
      last = JSON.stringify(body);
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new PgreplError('E_ETCD', `etcd at ${url} did not become healthy within ${timeoutMs} ms (${last})`);
}
