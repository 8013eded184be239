import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { CertFacts } from '../decide/decide-cert.js';
import type { CertsObservation } from '../decide/plan-certs.js';

/**
 * What `decideCert` needs to know of the certificate at `certPath`, checked against the CA at
 * `caPath`: its validity, the names in its subjectAltName, and whether that CA signed it. A file
 * that is missing, or holds no certificate, reads as none.
 */
export function readCert(certPath: string, caPath: string): CertFacts {
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(certPath));
    ca = new X509Certificate(readFileSync(caPath));
  } catch {
    return { present: false };
  }
  return {
    present: true,
    notBeforeMs: Date.parse(cert.validFrom),
    notAfterMs: Date.parse(cert.validTo),
    names: subjectAltNames(cert.subjectAltName),
    signedByCa: cert.checkIssued(ca) && cert.verify(ca.publicKey),
  };
}

/** "DNS:db1, IP Address:10.0.0.11" → ['db1', '10.0.0.11']. */
function subjectAltNames(san: string | undefined): string[] {
  if (!san) return [];
  return san
    .split(', ')
    .map((entry) => /^(?:DNS|IP Address):(.+)$/.exec(entry)?.[1])
    .filter((n): n is string => n !== undefined);
}

/** The certificates of `tls: auto` for `nodes` (the nodes of this machine), read from `files`. */
export function readAutoCerts(
  caFiles: { cert: string; key: string },
  nodes: readonly { name: string; cert: string }[],
): CertsObservation {
  return {
    ca: readCert(caFiles.cert, caFiles.cert),
    caKey: existsSync(caFiles.key),
    nodes: Object.fromEntries(nodes.map((n) => [n.name, readCert(n.cert, caFiles.cert)])),
  };
}
