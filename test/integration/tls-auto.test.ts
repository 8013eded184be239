import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import { issueCert } from '../../src/cluster/actions/issue-cert.js';
import { resolveRunAs } from '../../src/postgres/resolve-os-user.js';
import type { TestCluster } from '../helpers/test-cluster.js';
import { clusterForSuite, pgBin, upCluster, waitUntil } from '../helpers/test-cluster.js';

const tlsDir = (c: TestCluster) => join(c.base, 'state', 'tls');

/** The certificate a server presents, read over PostgreSQL's SSLRequest and a TLS handshake. */
async function servedCert(port: number, caFile: string): Promise<X509Certificate> {
  let seen: X509Certificate | undefined;
  const c = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'nobody',
    password: 'x',
    database: 'postgres',
    ssl: {
      ca: readFileSync(caFile, 'utf8'),
      // Called with the certificate once its chain checked out; the login then fails, as it should.
      checkServerIdentity: (_host, cert) => {
        seen = new X509Certificate(cert.raw);
        return undefined;
      },
    },
  });
  c.on('error', () => undefined);
  await c.connect().catch(() => undefined);
  await c.end().catch(() => undefined);
  if (!seen) throw new Error(`no certificate from port ${port}`);
  return seen;
}

/** Runs psql with a libpq conninfo; its error output when it fails. */
function psql(conninfo: string, password: string): { ok: boolean; out: string } {
  try {
    const out = execFileSync(join(pgBin(), 'psql'), ['-XAtc', 'SELECT 1', conninfo], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PGPASSWORD: password },
    });
    return { ok: true, out };
  } catch (err) {
    return { ok: false, out: String((err as { stderr?: unknown }).stderr) };
  }
}

async function writeRows(c: TestCluster, node: string, from: number, to: number): Promise<void> {
  await c.sql(node, `INSERT INTO t SELECT generate_series(${from}, ${to})`);
}

describe('tls: auto — every connection between the nodes and from pgrepl encrypted and checked (issue 13)', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2', 'pg3'], (made) => (c = made), {
    extraSpec: 'tls: auto\n',
    setUp: async (made) => {
      await upCluster(made);
      await made.sql('pg1', 'CREATE TABLE t (id int PRIMARY KEY)');
    },
  });

  it('keeps the CA and each node’s key 0600, owned by the OS user PostgreSQL runs as', () => {
    const owner = resolveRunAs('postgres');
    for (const f of ['ca.key', 'ca.crt', 'pg1.key', 'pg2.key', 'pg3.key']) {
      const st = statSync(join(tlsDir(c), f));
      assert.equal(st.mode & 0o777, 0o600, f);
      if (owner) assert.equal(st.uid, owner.uid, f);
    }
    assert.equal(statSync(tlsDir(c)).mode & 0o777, 0o700);
  });

  it('streams every replica over TLS, and status says so per connection', async () => {
    const rows = await c.sql<{ name: string; ssl: boolean; version: string }>(
      'pg1',
      `SELECT r.application_name AS name, s.ssl, s.version
         FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) ORDER BY 1`,
    );
    assert.deepEqual(
      rows.map((r) => [r.name, r.ssl]),
      [
        ['pg2', true],
        ['pg3', true],
      ],
    );
    const s = JSON.parse((await c.cli(['status', '--json'])).stdout) as {
      healthy: boolean;
      nodes: { name: string; tls: { replication: string | null; pgrepl: string | null } }[];
    };
    assert.equal(s.healthy, true);
    for (const n of s.nodes) {
      assert.match(n.tls.pgrepl ?? '', /^TLSv1\.[23]$/, `pgrepl's own connection to ${n.name}`);
      if (n.name !== 'pg1') assert.equal(n.tls.replication, rows[0]?.version, `${n.name}'s stream`);
    }
    assert.match((await c.cli(['status'])).stdout, /│ tls\s+│/);
  });

  it('refuses a connection without TLS, even with the right password', async () => {
    const plain = psql(
      `host=127.0.0.1 port=${c.port('pg1')} user=postgres dbname=postgres sslmode=disable`,
      c.superuserPassword(),
    );
    assert.equal(plain.ok, false);
    assert.match(
      plain.out,
      /no pg_hba\.conf entry for host "127\.0\.0\.1", user "postgres", database "postgres", no encryption/,
    );
    const checked = psql(
      `host=127.0.0.1 port=${c.port('pg1')} user=postgres dbname=postgres sslmode=verify-full sslrootcert=${join(tlsDir(c), 'ca.crt')}`,
      c.superuserPassword(),
    );
    assert.deepEqual(checked, { ok: true, out: '1\n' });
  });

  it('checks the name: a client that dialled another name than the certificate holds is refused', () => {
    const r = psql(
      `host=localhost hostaddr=127.0.0.1 port=${c.port('pg1')} user=postgres dbname=postgres sslmode=verify-full sslrootcert=${join(tlsDir(c), 'ca.crt')}`,
      c.superuserPassword(),
    );
    assert.equal(r.ok, false);
    assert.match(r.out, /server certificate for "127\.0\.0\.1" does not match host name "localhost"/);
  });

  it('renews a certificate near its end at `up`, online: the server serves the new one after a reload', async () => {
    const owner = resolveRunAs('postgres');
    // pg2's certificate as if issued 364 days ago: one day left.
    await issueCert(
      tlsDir(c),
      { cert: join(tlsDir(c), 'ca.crt'), key: join(tlsDir(c), 'ca.key') },
      'pg2',
      ['127.0.0.1'],
      1,
      owner,
    );
    const before = c.postmasterPid('pg2');
    const short = new X509Certificate(readFileSync(join(tlsDir(c), 'pg2.crt')));
    // Agents never run `up`: status tells of it (a note: the cluster is still healthy).
    const st = await c.cli(['status']);
    assert.equal(st.code, 0, st.stdout);
    assert.match(
      st.stdout,
      /note: pg2's certificate: expires in 1 day\(s\), within the renewal window; `pgrepl rotate-certs`/,
    );
    const dry = await c.cli(['up', '--dry-run']);
    assert.match(dry.stdout + dry.stderr, /issue pg2's certificate/);
    assert.match(dry.stdout + dry.stderr, /expires in 1 day\(s\), within the renewal window/);
    const up = await c.cli(['up']);
    assert.equal(up.code, 0, up.stderr);
    await waitUntil(
      async () =>
        (await servedCert(c.port('pg2'), join(tlsDir(c), 'ca.crt'))).serialNumber !== short.serialNumber,
      10_000,
      'pg2 to serve its new certificate',
    );
    const served = await servedCert(c.port('pg2'), join(tlsDir(c), 'ca.crt'));
    assert.ok(Date.parse(served.validTo) - Date.now() > 300 * 24 * 3600 * 1000);
    assert.equal(c.postmasterPid('pg2'), before, 'no restart');
    const again = await c.cli(['up', '--dry-run']);
    assert.doesNotMatch(again.stdout + again.stderr, /certificate/);
  });

  it('rotate-certs --all issues every certificate again and each server serves it, still streaming', async () => {
    const ca = join(tlsDir(c), 'ca.crt');
    const before = await Promise.all(
      ['pg1', 'pg2', 'pg3'].map(async (n) => (await servedCert(c.port(n), ca)).serialNumber),
    );
    const pids = ['pg1', 'pg2', 'pg3'].map((n) => c.postmasterPid(n));
    const r = await c.cli(['rotate-certs', '--all', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      steps: unknown[];
      certs: { name: string; action: string | null }[];
    };
    assert.equal(out.steps.length, 3);
    assert.deepEqual(
      out.certs.map((x) => [x.name, x.action === null ? null : x.action.startsWith('asked for')]),
      [
        ['ca', null],
        ['pg1', true],
        ['pg2', true],
        ['pg3', true],
      ],
    );
    for (const [i, n] of ['pg1', 'pg2', 'pg3'].entries())
      await waitUntil(
        async () => (await servedCert(c.port(n), ca)).serialNumber !== before[i],
        10_000,
        `${n} to serve its new certificate`,
      );
    assert.deepEqual(
      ['pg1', 'pg2', 'pg3'].map((n) => c.postmasterPid(n)),
      pids,
      'no restart',
    );
    const s = await c.status();
    assert.equal(s.healthy, true, s.warnings.join('\n'));
  });

  it('rewinds a failed primary and brings it back over TLS', async () => {
    await writeRows(c, 'pg1', 1, 100);
    await waitUntil(
      async () => (await c.sql<{ n: string }>('pg2', 'SELECT count(*) AS n FROM t'))[0]?.n === '100',
      10_000,
      'pg2 to replay',
    );
    // Rows only pg1 gets (its senders frozen), then pg1 dies: pg2 must be promoted, pg1 rewound.
    const senders = await c.sql<{ pid: number }>('pg1', 'SELECT pid FROM pg_stat_replication');
    for (const s of senders) process.kill(s.pid, 'SIGSTOP');
    await writeRows(c, 'pg1', 101, 110);
    await c.crash('pg1');
    const promoted = await c.cli(['promote', 'pg2']);
    assert.equal(promoted.code, 0, promoted.stderr);
    const r = await c.cli(['rejoin', 'pg1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pg1 streams from pg2 again \(rewind/);
    const [stream] = await c.sql<{ ssl: boolean }>(
      'pg2',
      "SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.application_name = 'pg1'",
    );
    assert.equal(stream?.ssl, true);
  });
});

describe('tls: auto on a running cluster that had none', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), { extraSpec: 'tls: off\n', setUp: upCluster });

  it('turns TLS on without a restart, and every replica streams over it', async () => {
    const pids = ['pg1', 'pg2'].map((n) => c.postmasterPid(n));
    c.extraSpec = 'tls: auto\n';
    c.writeSpec();
    const up = await c.cli(['up']);
    assert.equal(up.code, 0, up.stderr);
    await waitUntil(
      async () =>
        (
          await c.sql<{ ssl: boolean }>(
            'pg1',
            'SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)',
          )
        )[0]?.ssl === true,
      15_000,
      'pg2 to stream over TLS',
    );
    assert.deepEqual(
      ['pg1', 'pg2'].map((n) => c.postmasterPid(n)),
      pids,
      'ssl, its files and pg_hba take a reload',
    );
    const s = await c.status();
    assert.equal(s.healthy, true, s.warnings.join('\n'));
  });

  it('rotate-certs says what to do when the spec has tls: off', async () => {
    c.extraSpec = 'tls: off\n';
    c.writeSpec();
    const r = await c.cli(['rotate-certs']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /E_USAGE: .* has tls: off; set tls: auto and run `pgrepl up`/);
  });
});
