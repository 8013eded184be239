import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, cpSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { assertNoLeakedServers, REPO, TestCluster } from '../helpers/test-cluster.js';

const isRoot = process.getuid?.() === 0;
const postgresUid = (() => {
  try {
    return Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  } catch {
    return undefined;
  }
})();

describe(
  'who runs PostgreSQL',
  { skip: (!isRoot || postgresUid === undefined) && 'needs root and a postgres user' },
  () => {
    const clusters: TestCluster[] = [];
    after(async () => {
      for (const c of clusters) await c.cleanup();
      assertNoLeakedServers();
    });

    it('as root: the servers run as postgres, which owns the data dirs', async () => {
      const c = await TestCluster.create(['pg1', 'pg2']);
      clusters.push(c);
      const up = await c.cli(['up']);
      assert.equal(up.code, 0, up.stderr);
      for (const n of ['pg1', 'pg2']) {
        assert.equal(statSync(c.dataDir(n)).uid, postgresUid);
        assert.equal(statSync(c.dataDir(n)).mode & 0o777, 0o700);
        const pid = c.postmasterPid(n) as number;
        const uid = Number(
          /^Uid:\s+(\d+)/m.exec(execFileSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' }))?.[1],
        );
        assert.equal(uid, postgresUid);
      }
    });

    it('as an ordinary user: the servers run as that user', async () => {
      const c = await TestCluster.create(['pg1', 'pg2']);
      clusters.push(c);
      // The checkout may sit where postgres cannot read it (CI clones into a 0700 temp dir), so the
      // user runs an installed copy of pgrepl from a directory it can read, as a real user would:
      // what package.json's files ship, and the dependencies.
      const app = join(c.base, 'app');
      const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { files: string[] };
      for (const part of ['package.json', ...pkg.files, 'node_modules']) {
        cpSync(join(REPO, part), join(app, part), { recursive: true });
      }
      const cli = join(app, 'bin', 'pgrepl.js');
      chownSync(c.base, postgresUid as number, -1);
      chownSync(c.specFile, postgresUid as number, -1);
      const run = (args: string[]) =>
        execFileSync('runuser', ['-u', 'postgres', '--', process.execPath, cli, '-c', c.specFile, ...args], {
          encoding: 'utf8',
          cwd: c.base,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      assert.match(run(['up']), /pg1 primary, pg2 streaming/);
      const status = JSON.parse(run(['status', '--json'])) as { healthy: boolean };
      assert.equal(status.healthy, true);
      assert.equal(statSync(join(c.base, 'state', 'secrets', 'superuser.pgpass')).uid, postgresUid);
      run(['destroy', '--yes']);
      assert.deepEqual(readdirSync(c.base).sort(), ['app', 'pgrepl.yaml']);
    });
  },
);
