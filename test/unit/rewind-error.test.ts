import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rewindError } from '../../src/postgres/run-rewind.js';

describe('rewindError', () => {
  it("names pg_rewind's error and the FATAL of its single-user crash recovery", () => {
    const output = [
      'pg_rewind: connected to server',
      'pg_rewind: executing "/usr/lib/postgresql/15/bin/postgres" for target server to complete crash recovery',
      '2026-11-25 12:15:41.201 GMT [10111] FATAL:  lock file "postmaster.pid" already exists',
      '2026-11-25 12:15:41.201 GMT [10111] HINT:  Is another postmaster (PID 10002) running in data directory?',
      'pg_rewind: error: postgres single-user mode in target cluster failed',
      'pg_rewind: detail: Command was: /usr/lib/postgresql/15/bin/postgres --single -F -D /data template1 < /dev/null',
    ].join('\n');
    assert.equal(
      rewindError(output),
      'postgres single-user mode in target cluster failed (postgres: lock file "postmaster.pid" already exists)',
    );
  });

  it('falls back to the last line when pg_rewind printed no error line', () => {
    assert.equal(rewindError('pg_rewind: connected to server\nsomething odd'), 'something odd');
  });
});
