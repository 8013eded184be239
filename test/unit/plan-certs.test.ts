import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { certStatus, planCerts } from '../../src/cluster/decide/plan-certs.js';
import type { CertsObservation } from '../../src/cluster/decide/plan-certs.js';
import type { CertFacts } from '../../src/cluster/decide/decide-cert.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';

const day = 24 * 3600 * 1000;
const now = Date.parse('2026-12-06T12:00:00Z');
const spec = parseSpec(
  `cluster: shop
tls: auto
nodes:
  - { name: pg1, host: 127.0.0.1, port: 5001 }
  - { name: pg2, host: 127.0.0.2, port: 5002 }
  - { name: pg3, host: 10.0.0.3, port: 5003 }
`,
  'x',
  '/',
);
const here = new Set(['pg1', 'pg2']);
const valid = (names: string[], daysLeft = 200): Extract<CertFacts, { present: true }> => ({
  present: true,
  notBeforeMs: now - day,
  notAfterMs: now + daysLeft * day,
  names,
  signedByCa: true,
});
const fine: CertsObservation = {
  ca: valid([], 3000),
  caKey: true,
  nodes: { pg1: valid(['127.0.0.1']), pg2: valid(['127.0.0.2']) },
};
const plan = (certs: CertsObservation) =>
  planCerts(spec, certs, here, now).map((s) => `${s.kind} ${s.node}: ${s.reason}`);

describe('the certificates of tls: auto', () => {
  it('makes the CA, then a certificate for each node of this machine only', () => {
    assert.deepEqual(plan({ ca: { present: false }, caKey: false, nodes: {} }), [
      'issue-ca shop: the cluster has no CA key yet',
      'issue-cert pg1: no certificate yet',
      'issue-cert pg2: no certificate yet',
    ]);
  });

  it('changes nothing while everything is valid for long enough', () => {
    assert.deepEqual(plan(fine), []);
  });

  it('renews a certificate in its last 30 days, and one that does not name its host', () => {
    assert.deepEqual(plan({ ...fine, nodes: { pg1: valid(['127.0.0.1'], 29), pg2: valid(['127.0.0.9']) } }), [
      'issue-cert pg1: expires in 29 day(s), within the renewal window',
      'issue-cert pg2: does not name 127.0.0.2, which clients will check',
    ]);
  });

  it('renews a CA near its end with its key, which keeps the nodes’ certificates valid', () => {
    assert.deepEqual(plan({ ...fine, ca: valid([], 100) }), [
      "issue-ca shop: the CA's certificate: expires in 100 day(s), within the renewal window",
    ]);
  });

  it('signs every certificate again when the CA key is gone (a new CA trusts none of the old ones)', () => {
    assert.deepEqual(plan({ ...fine, caKey: false }), [
      'issue-ca shop: the cluster has no CA key yet',
      'issue-cert pg1: the CA is new: signed again by it',
      'issue-cert pg2: the CA is new: signed again by it',
    ]);
  });

  it('issues every certificate of this machine when asked to (rotate-certs --all), the CA only when due', () => {
    assert.deepEqual(
      planCerts(spec, fine, here, now, { renewAll: true }).map((s) => `${s.kind} ${s.node}: ${s.reason}`),
      [
        'issue-cert pg1: asked for (it was valid for 200 more day(s))',
        'issue-cert pg2: asked for (it was valid for 200 more day(s))',
      ],
    );
  });

  it('tells status: an expired certificate is a warning, one due for renewal a note', () => {
    const expired: CertFacts = { ...valid(['127.0.0.2']), notAfterMs: now - day };
    assert.deepEqual(
      certStatus(spec, { ...fine, nodes: { pg1: valid(['127.0.0.1'], 10), pg2: expired } }, here, now),
      {
        warnings: ["pg2's certificate: expired; `pgrepl rotate-certs` issues it again, online"],
        notes: [
          "pg1's certificate: expires in 10 day(s), within the renewal window; `pgrepl rotate-certs` issues it again, online",
        ],
      },
    );
    assert.deepEqual(certStatus(spec, fine, here, now), { warnings: [], notes: [] });
  });

  it('judges the nodes’ own files alike, and tells to replace them', () => {
    const files = { ...spec, tls: 'files' as const };
    const expired: CertFacts = { ...valid(['127.0.0.2']), notAfterMs: now - day };
    const nodes = { pg1: valid(['127.0.0.1'], 5), pg2: expired };
    assert.deepEqual(certStatus(files, { ...fine, nodes }, here, now), {
      warnings: [
        "pg2's certificate (nodes[].tls): expired; replace it, then `pgrepl rotate-certs` has the server read it",
      ],
      notes: [
        "pg1's certificate (nodes[].tls): expires in 5 day(s), within the renewal window; replace it, then `pgrepl rotate-certs` has the server read it",
      ],
    });
  });

  it('plans nothing without tls: auto', () => {
    for (const tls of ['off', 'files'] as const)
      assert.deepEqual(
        planCerts({ ...spec, tls }, { ca: { present: false }, caKey: false, nodes: {} }, here, now),
        [],
      );
  });
});
