import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import S3rver from 's3rver';

/** An S3-compatible server on loopback, over TLS as pgBackRest requires, with one bucket. */
export interface S3Server {
  readonly port: number;
  /** The CA that signed the server's certificate (world-readable: pgBackRest runs as postgres). */
  readonly caFile: string;
  readonly bucket: string;
  /** s3rver's one account. */
  readonly key: string;
  readonly secret: string;
  /** Where the server keeps the objects: `<dir>/<bucket>/<key>`. */
  readonly dataDir: string;
  close(): Promise<void>;
}

/**
 * Starts s3rver in this process on 127.0.0.1 with a certificate of a CA made for it. The
 * certificate names 127.0.0.1 as a DNS name too: pgBackRest 2.45 compares the endpoint with the
 * certificate's DNS names only.
 */
export async function startS3Server(dir: string, bucket = 'pgrepl'): Promise<S3Server> {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const file = (name: string) => join(dir, name);
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl([
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
    ...['-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '2', '-subj', '/CN=pgrepl test S3 CA'],
  ]);
  openssl([
    ...['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
    ...['-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1'],
  ]);
  writeFileSync(file('server.ext'), 'subjectAltName=DNS:127.0.0.1,IP:127.0.0.1\n');
  openssl([
    ...['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key')],
    ...['-CAcreateserial', '-days', '2', '-extfile', file('server.ext'), '-out', file('server.crt')],
  ]);
  chmodSync(file('ca.crt'), 0o644);
  const dataDir = file('objects');
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dataDir,
    key: readFileSync(file('server.key')),
    cert: readFileSync(file('server.crt')),
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const address = await server.run();
  return {
    port: address.port,
    caFile: file('ca.crt'),
    bucket,
    key: 'S3RVER',
    secret: 'S3RVER',
    dataDir,
    close: () => server.close(),
  };
}
