/** Issue 9.11: a changed password reaches the role before any passfile; no password needed to stop. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { clusterForSuite, upCluster, waitUntil } from '../helpers/test-cluster.js';
import type { TestCluster } from '../helpers/test-cluster.js';

describe('a replication password changed in its file (issue 9.11)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), { setUp: upCluster });

  it('status says the role has another password, up gives it the new one, and down/start still stream', async () => {
    writeFileSync(join(c.base, 'state', 'secrets', 'replication.password'), 'a-new-replication-password\n', {
      mode: 0o600,
    });
    const before = await c.status();
    assert.ok(
      before.warnings.some((w) =>
        /replication password pgrepl has is not the one role replicator has on pg1/.test(w),
      ),
      before.warnings.join('\n'),
    );
    const up = await c.cli(['up', '--json']);
    assert.equal(up.code, 0, up.stderr);
    const steps = (JSON.parse(up.stdout) as { steps: { kind: string; reason: string }[] }).steps;
    assert.ok(
      steps.some((s) => s.kind === 'ensure-replication-role' && /password changed/.test(s.reason)),
      up.stdout,
    );
    const [ok] = await c.sql<{ ok: boolean }>(
      'pg1',
      "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' AS ok FROM pg_authid WHERE rolname = 'replicator'",
    );
    assert.equal(ok?.ok, true);
    assert.equal((await c.status()).healthy, true);
    assert.equal((await c.cli(['down'])).code, 0);
    const start = await c.cli(['start']);
    assert.equal(start.code, 0, start.stderr);
    await waitUntil(async () => (await c.status()).healthy, 20_000, 'pg2 to stream with the new password');
  });
});

describe('passwords from the environment (issue 9.11)', () => {
  let c: TestCluster;
  const env = { PGREPL_TEST_SU_PW: 'su-password-from-env' };
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), {
    extraSpec: 'superuser:\n  password: { env: PGREPL_TEST_SU_PW }\n',
    setUp: async (made) => {
      const up = await made.cli(['up'], { env });
      assert.equal(up.code, 0, up.stderr);
    },
  });

  it('down and destroy work without them; status says which variable is missing', async () => {
    const s = await c.cli(['status', '--json']);
    assert.equal(s.code, 3);
    assert.match(s.stdout, /PGREPL_TEST_SU_PW, which is not set/);
    const down = await c.cli(['down']);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(c.postmasterPid('pg1'), null);
    const destroy = await c.cli(['destroy', '--yes']);
    assert.equal(destroy.code, 0, destroy.stderr);
  });
});
