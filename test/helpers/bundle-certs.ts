import type { BundleCerts } from '../../src/deploy/render-host-bundle.js';

/** Stand-in PEM files for `tls: auto` bundles, without keys (what `render` ships without --with-secrets). */
export function certsWithoutKeys(nodes: readonly string[]): BundleCerts {
  const pem = (what: string) => `-----BEGIN CERTIFICATE-----\n${what}\n-----END CERTIFICATE-----\n`;
  return {
    ca: pem('CA'),
    nodes: Object.fromEntries(nodes.map((n) => [n, { cert: pem(n), key: undefined }])),
  };
}
