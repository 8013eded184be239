import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findEtcd, localEtcdArgs, localEtcdUrl, waitEtcdHealthy } from '../../src/dcs/local-etcd.js';
import { freePort } from './test-cluster.js';

/** A real single-member etcd on free loopback ports, in a temp dir; stop() kills it by PID. */
export interface TestEtcd {
  readonly url: string;
  readonly pid: number;
  readonly dir: string;
  stop(): Promise<void>;
}

export async function startTestEtcd(): Promise<TestEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'pgrepl-etcd-'));
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const e = { dataDir: join(dir, 'data'), clientPort, peerPort };
  const log = openSync(join(dir, 'etcd.log'), 'a');
  const child = spawn(findEtcd(process.env), localEtcdArgs(e), {
    stdio: ['ignore', log, log],
    detached: true,
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const pid = child.pid as number;
  const stop = async () => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitEtcdHealthy(localEtcdUrl(e), 15_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: localEtcdUrl(e), pid, dir, stop };
}
