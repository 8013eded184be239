/**
 * One contender in the lock race of cluster-lock.test.ts: waits until `startAt` (ms since the
 * epoch), tries the cluster lock of `stateDir`, prints `won` or `locked`; a winner holds the lock
 * until `releaseFile` exists.
 */
import { existsSync } from 'node:fs';
import { withClusterLock } from '../../src/cluster/store/cluster-lock.js';
import { PgreplError } from '../../src/errors.js';

const [stateDir, startAt, releaseFile] = process.argv.slice(2);
// `node --test dist/test/` also runs this file, with no arguments: then it has nothing to do.
if (stateDir === undefined || startAt === undefined || releaseFile === undefined) process.exit(0);
while (Date.now() < Number(startAt)) {
  // spin: every contender leaves the line at the same moment
}
try {
  await withClusterLock(stateDir, 'race', async () => {
    process.stdout.write('won\n');
    while (!existsSync(releaseFile)) await new Promise((r) => setTimeout(r, 10));
  });
} catch (err) {
  if (!(err instanceof PgreplError && err.code === 'E_LOCKED')) throw err;
  process.stdout.write('locked\n');
}
