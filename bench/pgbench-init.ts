import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { TestCluster } from '../test/helpers/test-cluster.js';

/**
 * `pgbench -i -q -s scale` into `node` of a cluster `up` made, as the superuser through the
 * cluster's passfile (no password in the environment or on the command line).
 */
export function pgbenchInit(c: TestCluster, bin: string, node: string, scale: number): void {
  const passfile = join(c.base, 'state', 'secrets', 'superuser.pgpass');
  const init = spawnSync(
    join(bin, 'pgbench'),
    [
      '-i',
      '-q',
      '-s',
      String(scale),
      '-h',
      '127.0.0.1',
      '-p',
      String(c.port(node)),
      '-U',
      'postgres',
      'postgres',
    ],
    { env: { ...process.env, PGPASSFILE: passfile }, encoding: 'utf8' },
  );
  if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
}
