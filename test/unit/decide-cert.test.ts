import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideCert } from '../../src/cluster/decide/decide-cert.js';
import type { CertFacts } from '../../src/cluster/decide/decide-cert.js';

const day = 24 * 3600 * 1000;
const now = Date.UTC(2026, 11, 6);
const want = { names: ['10.0.0.11', 'db1.example'], renewBeforeMs: 30 * day };
const good: CertFacts = {
  present: true,
  notBeforeMs: now - day,
  notAfterMs: now + 365 * day,
  names: ['10.0.0.11', 'db1.example', 'localhost'],
  signedByCa: true,
};

describe('decideCert (tls: auto)', () => {
  it('keeps a certificate of the cluster’s CA that names every host and has time left', () => {
    assert.deepEqual(decideCert(good, want, now), { kind: 'keep', reason: 'valid for 365 more day(s)' });
  });

  for (const [what, facts, reason] of [
    ['none on disk', { present: false }, /no certificate yet/],
    ['another CA’s', { ...good, signedByCa: false }, /another CA/],
    ['a host it does not name', { ...good, names: ['10.0.0.11'] }, /does not name db1\.example/],
    ['valid only later', { ...good, notBeforeMs: now + day }, /still to come/],
    ['expired', { ...good, notAfterMs: now - 1 }, /^expired$/],
    [
      'inside the renewal window',
      { ...good, notAfterMs: now + 10 * day },
      /expires in 10 day\(s\), within the renewal window/,
    ],
    ['at the window’s edge', { ...good, notAfterMs: now + 30 * day }, /expires in 30 day\(s\)/],
  ] as const) {
    it(`issues again: ${what}`, () => {
      const d = decideCert(facts as CertFacts, want, now);
      assert.equal(d.kind, 'issue');
      assert.match(d.reason, reason);
    });
  }

  it('keeps one a day past the renewal window', () => {
    assert.equal(decideCert({ ...good, notAfterMs: now + 31 * day }, want, now).kind, 'keep');
  });
});
