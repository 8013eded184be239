import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgreplError } from '../../src/errors.js';
import { resolveRunAs } from '../../src/postgres/resolve-os-user.js';

const passwd =
  'root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104:PostgreSQL:/var/lib/postgresql:/bin/bash\n';

describe('run-as user', () => {
  it('runs PostgreSQL as the configured OS user when pgrepl is root', () => {
    assert.deepEqual(resolveRunAs('postgres', 0, passwd), {
      name: 'postgres',
      uid: 101,
      gid: 104,
      home: '/var/lib/postgresql',
    });
  });

  it('runs as the current user otherwise', () => {
    assert.equal(resolveRunAs('postgres', 1000, passwd), undefined);
  });

  it('says how to get the user when it does not exist, and refuses root itself', () => {
    assert.throws(
      () => resolveRunAs('pgsql', 0, passwd),
      (e: unknown) =>
        e instanceof PgreplError &&
        e.code === 'E_OS_USER' &&
        /apt-get|install Debian's postgresql/.test(e.message),
    );
    assert.throws(() => resolveRunAs('root', 0, passwd), /refuses to run as root/);
  });
});
