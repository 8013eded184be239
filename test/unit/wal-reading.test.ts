import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scramVerifier, verifierMatches } from '../../src/postgres/scram-verifier.js';
import { parseSettingProblems } from '../../src/postgres/check-settings.js';
import { walFileName } from '../../src/postgres/lsn.js';
import { parseControlData } from '../../src/postgres/read-controldata.js';
import { copiedMb, rewindError } from '../../src/postgres/run-rewind.js';

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

describe('walFileName', () => {
  it('names the segment file as pg_walfile_name() does', () => {
    const mb16 = 16 * 1024 * 1024;
    assert.equal(walFileName(1, '0/4000000', mb16), '000000010000000000000004');
    assert.equal(walFileName(1, '0/4FFFFFF', mb16), '000000010000000000000004');
    assert.equal(walFileName(10, '1/A3000028', mb16), '0000000A00000001000000A3');
    assert.equal(walFileName(2, '0/4000000', 64 * 1024 * 1024), '000000020000000000000001');
  });
});

describe('parseControlData', () => {
  it('reads the state, the last checkpoint, its timeline, the segment and page sizes', () => {
    const text = [
      'Database cluster state:               shut down',
      'Latest checkpoint location:           0/5000028',
      "Latest checkpoint's TimeLineID:       3",
      'WAL block size:                       8192',
      'Bytes per WAL segment:                16777216',
    ].join('\n');
    assert.deepEqual(parseControlData(text), {
      state: 'shut down',
      checkpointLsn: '0/5000028',
      timeline: 3,
      walSegmentBytes: 16777216,
      walBlockBytes: 8192,
    });
  });
});

describe('copiedMb', () => {
  it('reads what pg_rewind says it must copy', () => {
    const output =
      'pg_rewind: servers diverged at WAL location 0/29000000 on timeline 1\n' +
      'pg_rewind: need to copy 67 MB (total source directory size is 86 MB)\n' +
      '69461/69461 kB (100%) copied\npg_rewind: Done!';
    assert.equal(copiedMb(output), 67);
  });

  it('is null when pg_rewind copied nothing', () => {
    assert.equal(copiedMb('pg_rewind: no rewind required'), null);
  });
});

describe('parseSettingProblems (issue 9.10)', () => {
  it('names each rejected setting with the server’s words and hint, without the scratch file', () => {
    const log = [
      '2026-12-01 10:30:45.444 GMT [1] LOG:  skipping missing configuration file "/t/postgresql.auto.conf"',
      '2026-12-01 10:30:45.444 GMT [1] LOG:  unrecognized configuration parameter "bogus" in file "/t/postgresql.conf" line 1',
      '2026-12-01 10:30:45.444 GMT [1] LOG:  invalid value for parameter "wal_level": "replicaX"',
      '2026-12-01 10:30:45.444 GMT [1] HINT:  Available values: minimal, replica, logical.',
      '2026-12-01 10:30:45.444 GMT [1] FATAL:  configuration file "/t/postgresql.conf" contains errors',
    ].join('\n');
    assert.deepEqual(parseSettingProblems(log, '/t'), [
      { name: 'bogus', message: 'unrecognized configuration parameter "bogus"' },
      {
        name: 'wal_level',
        message:
          'invalid value for parameter "wal_level": "replicaX" (Available values: minimal, replica, logical)',
      },
    ]);
  });
});

describe('verifierMatches (issue 9.11)', () => {
  it('tells whether a stored SCRAM verifier was made from a password', () => {
    const v = scramVerifier('secret-one');
    assert.equal(verifierMatches('secret-one', v), true);
    assert.equal(verifierMatches('secret-two', v), false);
    assert.equal(verifierMatches('secret-one', null), false);
    assert.equal(verifierMatches('secret-one', 'md5abcdef'), false);
  });
});
