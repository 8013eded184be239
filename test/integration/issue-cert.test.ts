import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { issueCa, issueCert } from '../../src/cluster/actions/issue-cert.js';
import type { CertFiles } from '../../src/cluster/actions/issue-cert.js';
import { decideCert } from '../../src/cluster/decide/decide-cert.js';
import { readCert } from '../../src/cluster/observe/read-cert.js';

const day = 24 * 3600 * 1000;

/** Serves TLS with `server` on loopback and connects to 127.0.0.1 trusting `caCert` only. */
async function handshake(server: CertFiles, caCert: string): Promise<'ok' | string> {
  const srv = createServer({ cert: readFileSync(server.cert), key: readFileSync(server.key) }, (s) =>
    s.end(),
  );
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const { port } = srv.address() as AddressInfo;
    return await new Promise((resolve) => {
      const c = connect({ host: '127.0.0.1', port, ca: readFileSync(caCert) }, () => {
        c.destroy();
        resolve('ok');
      });
      c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
  } finally {
    srv.close();
  }
}

describe('tls: auto certificates, made with openssl (issue 13)', () => {
  const base = mkdtempSync(join(tmpdir(), 'pgrepl-certs-'));
  after(() => rmSync(base, { recursive: true, force: true }));
  const dir = join(base, 'tls');

  it('makes a CA and a node certificate a verify-full client accepts for the node’s address', async () => {
    const ca = await issueCa(dir, 'shop', 3650);
    const node = await issueCert(dir, ca, 'pg1', ['127.0.0.1', 'localhost'], 365);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const f of [ca.key, ca.cert, node.key, node.cert]) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    const facts = readCert(node.cert, ca.cert);
    assert.ok(facts.present && facts.signedByCa);
    assert.deepEqual([...facts.names].sort(), ['127.0.0.1', 'localhost']);
    assert.ok(Math.abs(facts.notAfterMs - Date.now() - 365 * day) < day);
    assert.equal(
      decideCert(facts, { names: ['127.0.0.1'], renewBeforeMs: 30 * day }, Date.now()).kind,
      'keep',
    );
    assert.equal(await handshake(node, ca.cert), 'ok');
  });

  it('is refused by a client for an address it does not name, and by one that trusts another CA', async () => {
    const ca = await issueCa(dir, 'shop', 3650);
    const elsewhere = await issueCert(dir, ca, 'pg2', ['10.0.0.12'], 365);
    assert.equal(await handshake(elsewhere, ca.cert), 'ERR_TLS_CERT_ALTNAME_INVALID');
    const other = await issueCa(join(base, 'other'), 'other', 3650);
    const node = await issueCert(dir, ca, 'pg1', ['127.0.0.1'], 365);
    assert.equal(await handshake(node, other.cert), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    // …and decideCert has it issued again once the CA it is checked against changed.
    const d = decideCert(
      readCert(node.cert, other.cert),
      { names: ['127.0.0.1'], renewBeforeMs: 30 * day },
      Date.now(),
    );
    assert.equal(d.kind, 'issue');
    assert.match(d.reason, /another CA/);
  });

  it('renews a CA with its own key: the certificates it signed still verify against the new one', async () => {
    const renewDir = join(base, 'renew');
    const ca = await issueCa(renewDir, 'shop', 30);
    const node = await issueCert(renewDir, ca, 'pg1', ['127.0.0.1'], 365);
    const keyBefore = readFileSync(ca.key, 'utf8');
    const before = new X509Certificate(readFileSync(ca.cert));
    await issueCa(renewDir, 'shop', 3650);
    const after = new X509Certificate(readFileSync(ca.cert));
    assert.notEqual(after.serialNumber, before.serialNumber);
    assert.ok(Date.parse(after.validTo) > Date.parse(before.validTo) + 3000 * day);
    assert.equal(readFileSync(ca.key, 'utf8'), keyBefore, 'the key stays');
    const facts = readCert(node.cert, ca.cert);
    assert.ok(facts.present && facts.signedByCa);
    assert.equal(await handshake(node, ca.cert), 'ok', "openssl's chain check, as a client makes it");
  });

  it('reads a missing certificate as none, so that it is issued', () => {
    assert.deepEqual(readCert(join(dir, 'nope.crt'), join(dir, 'ca.crt')), { present: false });
  });
});
