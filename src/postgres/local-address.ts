import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/**
 * Whether `host` names this machine: a loopback address (all of 127.0.0.0/8, ::1, localhost) or an
 * address of one of its interfaces. Only then are a node's data directory, files and processes
 * this machine's to read and touch; a node elsewhere is known by what it answers over the network.
 */
export async function isLocalHost(host: string): Promise<boolean> {
  let address = host;
  if (!isIP(host)) {
    try {
      address = (await lookup(host)).address;
    } catch {
      return false;
    }
  }
  if (address.startsWith('127.') || address === '::1') return true;
  return Object.values(networkInterfaces()).some((ifs) => ifs?.some((i) => i.address === address));
}
