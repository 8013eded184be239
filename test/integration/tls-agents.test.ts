import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { get } from 'node:https';
import { connect } from 'node:tls';
import { requestJson } from '../../src/dcs/http-json.js';
import { API_OFFSET, haveEtcd } from '../helpers/ha-agents.js';
import { TestCluster, assertNoLeakedServers, waitUntil } from '../helpers/test-cluster.js';

const NODES = ['pg1', 'pg2', 'pg3'];

/** The serial number of the certificate a TLS server on `port` presents, checked against `ca`. */
function servedSerial(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.once('error', reject);
  });
}

describe(
  'tls: auto with agents: their API is https, checked against the cluster’s CA (issue 13)',
  { skip: haveEtcd ? false : 'no etcd binary (apt-get install etcd-server)' },
  () => {
    let c: TestCluster;
    const api = (scheme: string, node: string, path: string) =>
      `${scheme}://127.0.0.1:${c.port(node) + API_OFFSET}${path}`;
    const ca = () => ({ ca: readFileSync(join(c.base, 'state', 'tls', 'ca.crt')) });

    before(async () => {
      c = await TestCluster.create(NODES, 'tls: auto\nha:\n  profile: fast\n');
      const up = await c.cli(['up', '--ha']);
      assert.equal(up.code, 0, up.stderr);
      assert.match(up.stdout + up.stderr, /https:\/\/127\.0\.0\.1:\d+/);
    });

    after(async () => {
      await c?.cleanup();
      assertNoLeakedServers();
    });

    it('answers over TLS with its node’s certificate, and not at all in clear text', async () => {
      for (const n of NODES) {
        const r = await requestJson(api('https', n, '/liveness'), null, AbortSignal.timeout(2000), {}, ca());
        assert.equal(r.status, 200, n);
        await assert.rejects(requestJson(api('http', n, '/liveness'), null, AbortSignal.timeout(2000)));
      }
      // Checked against the CA: a client that trusts another one gets no answer.
      const other = { ca: readFileSync(join(c.base, 'state', 'tls', 'pg1.crt')) };
      await assert.rejects(
        requestJson(api('https', 'pg1', '/liveness'), null, AbortSignal.timeout(2000), {}, other),
        /certificate/,
      );
    });

    it('serves a renewed certificate without a restart (rotate-certs)', async () => {
      const before = await servedSerial(c.port('pg3') + API_OFFSET, ca().ca);
      const r = await c.cli(['rotate-certs', '--all']);
      assert.equal(r.code, 0, r.stderr);
      await waitUntil(
        async () => (await servedSerial(c.port('pg3') + API_OFFSET, ca().ca)) !== before,
        30_000,
        "pg3's agent to serve its new certificate",
      );
    });

    it('says in /metrics how long its certificate has left', async () => {
      const text = await new Promise<string>((resolve, reject) => {
        get(api('https', 'pg2', '/metrics'), { ca: ca().ca }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve(body));
        }).once('error', reject);
      });
      const left = Number(/^pgrepl_certificate_expiry_seconds (\S+)$/m.exec(text)?.[1]);
      assert.ok(left > 300 * 24 * 3600 && left <= 365 * 24 * 3600, `${left}`);
    });

    it('switches over through the agents, over https', async () => {
      await waitUntil(async () => (await c.status()).healthy, 30_000, 'the cluster to be healthy');
      const r = await c.cli(['switchover', '--to', 'pg2']);
      assert.equal(r.code, 0, r.stderr);
      await waitUntil(
        async () => {
          const s = await c.status();
          return s.healthy && s.primary === 'pg2';
        },
        30_000,
        'pg2 to lead a healthy cluster',
      );
    });
  },
);
