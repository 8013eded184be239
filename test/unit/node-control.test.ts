import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { notLocalControl } from '../../src/cluster/actions/node-control.js';
import { systemClock } from '../../src/cluster/context/clock.js';
import { PgreplError } from '../../src/errors.js';

const remote = {
  name: 'pg3',
  host: '10.251.9.3',
  port: 5432,
  dataDir: '/srv/pg/pg3',
  failoverPriority: 1,
  noFailover: false,
  tls: undefined,
};

describe('the control of a node on another host', () => {
  it('reports no disk facts instead of reading this machine’s disk at the same path', () => {
    assert.deepEqual(
      notLocalControl(remote).readDisk(() => true),
      { local: false },
    );
  });

  it('refuses every effect with E_NOT_LOCAL, naming the node and its host', async () => {
    const control = notLocalControl(remote);
    for (const effect of [control.start(), control.fence(), control.rewind('host=x')]) {
      await assert.rejects(effect, (err: unknown) => {
        assert.ok(err instanceof PgreplError);
        assert.equal(err.code, 'E_NOT_LOCAL');
        assert.match(err.message, /^pg3 \(10\.251\.9\.3\) is on another host/);
        return true;
      });
    }
    assert.throws(() => control.state(), /E_NOT_LOCAL|on another host/);
  });
});

describe('systemClock.sleep', () => {
  it('ends at once with the reason when aborted, long before its time', async () => {
    const lost = new AbortController();
    const slept = systemClock.sleep(60_000, lost.signal);
    lost.abort(new Error('lease lost'));
    await assert.rejects(slept, /lease lost/);
    await assert.rejects(
      systemClock.sleep(60_000, lost.signal),
      /lease lost/,
      'an aborted signal never waits',
    );
  });
});
