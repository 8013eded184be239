import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { waitStreaming } from '../../src/cluster/actions/node-actions.js';
import { controlOf } from '../../src/cluster/actions/control-of.js';
import { configFor } from '../../src/cluster/actions/node-actions.js';
import { nodeOf, sqlOn } from '../../src/cluster/context/node-sql.js';
import { SqlError } from '../../src/errors.js';
import { buildContext } from '../../src/cluster/context/cluster-context.js';
import { cloneTempDir } from '../../src/cluster/observe/observation.js';
import { processRunner } from '../../src/postgres/command-runner.js';
import { loadSpec } from '../../src/cluster-spec/load-spec.js';
import { clusterForSuite, upCluster } from '../helpers/test-cluster.js';
import type { TestCluster } from '../helpers/test-cluster.js';

/**
 * The cluster layer called directly, as the agent and the REST API will call it. The agent must be
 * able to stop a step the moment it loses its lease: an aborted context ends waits, clones and
 * rewinds at once with the abort's reason, and leaves nothing half-made.
 */
describe('the cluster layer, called without the CLI', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), { setUp: upCluster });

  const contextWith = async (abort: AbortSignal) =>
    buildContext(await loadSpec({ cwd: c.base, env: process.env, file: c.specFile }), {
      runner: processRunner,
      env: process.env,
      abort,
    });

  it('ends a wait for streaming with the abort reason, long before its timeout', async () => {
    c.handStop('pg2');
    const lost = new AbortController();
    const ctx = await contextWith(lost.signal);
    const wait = waitStreaming(ctx, nodeOf(ctx, 'pg2'), nodeOf(ctx, 'pg1'), 60_000);
    setTimeout(() => lost.abort(new Error('lease lost')), 100);
    await assert.rejects(wait, /lease lost/);
  });

  it('names the node and the SQLSTATE of a statement a server refused (E_SQL)', async () => {
    const ctx = await contextWith(new AbortController().signal);
    const err = await sqlOn(ctx, nodeOf(ctx, 'pg1'), (s) => s.query('SELECT * FROM no_such_table')).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof SqlError, String(err));
    assert.equal(err.code, 'E_SQL');
    assert.equal(err.node, 'pg1');
    assert.equal(err.sqlstate, '42P01');
    assert.match(err.message, /^pg1: relation "no_such_table" does not exist \(SQLSTATE 42P01\)$/);
  });

  it('does not start a clone once aborted, and leaves no temporary directory', async () => {
    const lost = new AbortController();
    lost.abort(new Error('lease lost'));
    const ctx = await contextWith(lost.signal);
    const pg2 = nodeOf(ctx, 'pg2');
    await assert.rejects(
      controlOf(ctx, pg2).clone({
        conninfo: `host=127.0.0.1 port=${c.port('pg1')} user=replicator`,
        config: configFor(ctx, pg2, nodeOf(ctx, 'pg1')),
      }),
      /lease lost/,
    );
    assert.equal(existsSync(cloneTempDir(pg2.dataDir)), false);
  });
});
