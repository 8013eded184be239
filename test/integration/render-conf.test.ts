import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { verifierMatches } from '../../src/postgres/scram-verifier.js';
import { assertNoLeakedServers, CLI, TestCluster, waitUntil } from '../helpers/test-cluster.js';

const isRoot = process.getuid?.() === 0;
const SU = 'su-Pa:ss\\word';
const REPL = 'repl-pa:ss';

/** Runs a generated script the way its README says: as the PostgreSQL OS user. */
function runScript(path: string): string {
  const [cmd, args] = isRoot ? ['runuser', ['-u', 'postgres', '--', 'bash', path]] : ['bash', [path]];
  return execFileSync(cmd as string, args as string[], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The CA the bundle ships: with `tls: auto` the servers admit TLS connections only. */
let caPem = '';

async function query<R>(port: number, text: string): Promise<R[]> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password: SU,
    database: 'postgres',
    ssl: { ca: caPem, rejectUnauthorized: true },
  });
  await c.connect();
  try {
    return (await c.query(text)).rows as R[];
  } finally {
    await c.end();
  }
}

describe('render conf: the generated files, run as their README says, make a streaming pair', () => {
  let c: TestCluster;
  const bundle = () => join(c.base, 'bundle');

  before(async () => {
    c = await TestCluster.create(
      ['pg1', 'pg2'],
      'tls: auto\nsuperuser: { password: { env: T_SU } }\nreplication: { password: { env: T_REPL } }\n',
    );
    const r = await c.cli(['render', 'conf', '--out', bundle(), '--with-secrets'], {
      env: { T_SU: SU, T_REPL: REPL },
    });
    assert.equal(r.code, 0, r.stderr);
    caPem = readFileSync(join(bundle(), 'pg1', 'tls', 'ca.crt'), 'utf8');
    if (isRoot) execFileSync('chown', ['-R', 'postgres', c.base]);
  });
  after(async () => {
    await c.cleanup();
    assertNoLeakedServers();
  });

  it('ships each node its own key, 0600, and the CA that signed its certificate', () => {
    assert.equal(statSync(join(bundle(), 'pg2', 'tls', 'pg2.key')).mode & 0o777, 0o600);
    assert.throws(() => statSync(join(bundle(), 'pg2', 'tls', 'pg1.key')), /ENOENT/);
    const ca = new X509Certificate(caPem);
    const pg2 = new X509Certificate(readFileSync(join(bundle(), 'pg2', 'tls', 'pg2.crt')));
    assert.ok(pg2.verify(ca.publicKey));
    assert.equal(pg2.subjectAltName, 'IP Address:127.0.0.1');
  });

  it('keeps real secrets in 0600 files, and refuses to overwrite a bundle without --force', async () => {
    assert.equal(statSync(join(bundle(), 'pg1', '.env')).mode & 0o777, 0o600);
    assert.match(
      readFileSync(join(bundle(), 'pg2', '.env'), 'utf8'),
      /^PGREPL_REPLICATION_PASSWORD='repl-pa:ss'$/m,
    );
    const again = await c.cli(['render', 'conf', '--out', bundle()], { env: { T_SU: SU, T_REPL: REPL } });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is not empty; pick another --out, or pass --force/);
  });

  it('sets up the primary with its role and one slot per replica', async () => {
    assert.match(runScript(join(bundle(), 'pg1', 'setup.sh')), /pg1 is the primary/);
    const slots = await query<{ slot_name: string }>(
      c.port('pg1'),
      'SELECT slot_name FROM pg_replication_slots',
    );
    assert.deepEqual(
      slots.map((s) => s.slot_name),
      ['pg2'],
    );
    const [checksums] = await query<{ data_checksums: string }>(c.port('pg1'), 'SHOW data_checksums');
    assert.equal(checksums?.data_checksums, 'on');
  });

  it('clones the replica, which streams through its slot with its own configuration', async () => {
    assert.match(runScript(join(bundle(), 'pg2', 'setup.sh')), /pg2 streams from pg1/);
    await waitUntil(
      async () =>
        (
          await query<{ state: string }>(
            c.port('pg1'),
            "SELECT state FROM pg_stat_replication WHERE application_name = 'pg2'",
          )
        )[0]?.state === 'streaming',
      15_000,
      'pg2 to stream',
    );
    const [slot] = await query<{ active: boolean }>(
      c.port('pg1'),
      "SELECT active FROM pg_replication_slots WHERE slot_name = 'pg2'",
    );
    assert.equal(slot?.active, true);
    const [stream] = await query<{ ssl: boolean }>(
      c.port('pg1'),
      "SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.application_name = 'pg2'",
    );
    assert.equal(stream?.ssl, true, 'the replica streams over TLS');
    const [own] = await query<{ port: string; cluster_name: string }>(
      c.port('pg2'),
      "SELECT current_setting('port') AS port, current_setting('cluster_name') AS cluster_name",
    );
    assert.deepEqual(own, { port: String(c.port('pg2')), cluster_name: 'pg2' });
  });

  it('creates the replication role from a SCRAM verifier: the password is never in its SQL (issue 11)', () => {
    const script = readFileSync(join(bundle(), 'pg1', 'setup.sh'), 'utf8');
    assert.match(script, /PASSWORD :'replication_verifier'/);
    assert.doesNotMatch(script, /PGREPL_REPLICATION_PASSWORD/);
    const env = readFileSync(join(bundle(), 'pg1', '.env'), 'utf8');
    const verifier = /^PGREPL_REPLICATION_VERIFIER='(SCRAM-SHA-256\$4096:[^']+)'$/m.exec(env)?.[1];
    assert.ok(verifier, env);
    // `pgrepl scram-verifier` makes one from stdin, for a .env filled in by hand.
    const made = execFileSync(process.execPath, [CLI, 'scram-verifier'], {
      input: 'some password\n',
      encoding: 'utf8',
    });
    assert.ok(verifierMatches('some password', made.trim()));
  });

  it('is safe to run again', () => {
    assert.match(runScript(join(bundle(), 'pg1', 'setup.sh')), /already holds a database; nothing to do/);
  });
});
