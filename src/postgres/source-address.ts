import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { CommandRunner } from './command-runner.js';

/**
 * The address a connection from this machine to `host` leaves from, which is the address the
 * server matches against pg_hba. On one machine a connection to any 127.x address leaves from
 * 127.0.0.1, so the rule must name that, not the node's own host; `ip route get` tells.
 */
export async function sourceAddressFor(host: string, runner: CommandRunner): Promise<string> {
  const address = isIP(host) ? host : (await lookup(host)).address;
  try {
    const r = await runner.run('ip', ['-o', 'route', 'get', address], { timeoutMs: 3000 });
    const src = /\bsrc\s+(\S+)/.exec(r.stdout)?.[1];
    if (r.code === 0 && src) return src;
  } catch {
    // no iproute2: fall through to the loopback rule below
  }
  return address.startsWith('127.') ? '127.0.0.1' : address;
}
