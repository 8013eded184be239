import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PgreplError } from '../../errors.js';
import type { RunAs } from '../../postgres/command-runner.js';

const run = promisify(execFile);

/** Where a certificate and its key live: `<dir>/<name>.crt` and `<dir>/<name>.key` (0600). */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export const certFiles = (dir: string, name: string): CertFiles => ({
  cert: join(dir, `${name}.crt`),
  key: join(dir, `${name}.key`),
});

/**
 * Makes the cluster's certificate authority for `tls: auto` in `dir` (made 0700): an ECDSA P-256
 * key and a self-signed certificate valid for `days`. Keys are written 0600 and only ever passed to
 * openssl as paths. A CA whose key is there already is renewed with that key and the same name: the
 * certificates it signed stay valid under the new one, so renewing it breaks no connection.
 */
export async function issueCa(dir: string, cluster: string, days: number, owner?: RunAs): Promise<CertFiles> {
  const out = certFiles(dir, 'ca');
  const renew = existsSync(out.key);
  await issue(
    dir,
    out,
    (tmp) => [
      ...['req', '-x509', '-new', '-nodes', '-days', String(days), '-subj', `/CN=pgrepl CA ${cluster}`],
      ...(renew
        ? ['-key', out.key]
        : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-keyout', tmp.key]),
      ...['-out', tmp.cert],
      ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    ],
    { owner, keepKey: renew },
  );
  return out;
}

/**
 * Issues `name`'s certificate in `dir`, signed by `ca`, for every name in `names` (a host name or
 * an IP address: what a client running `sslmode=verify-full` compares with the host it dialled),
 * usable to serve and to connect. Replaces the files of an earlier one only once both are written.
 */
export async function issueCert(
  dir: string,
  ca: CertFiles,
  name: string,
  names: readonly string[],
  days: number,
  owner?: RunAs,
): Promise<CertFiles> {
  const out = certFiles(dir, name);
  const san = names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  await issue(
    dir,
    out,
    async (tmp) => {
      const csr = `${tmp.cert}.csr`;
      const ext = `${tmp.cert}.ext`;
      writeFileSync(
        ext,
        `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${san}\n`,
      );
      await openssl(
        ...['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
        // No CN: clients check the subjectAltName, and etcd's JSON gateway refuses any request whose
        // client certificate has a CN once etcd auth is on (it would be taken for the user).
        ...['-keyout', tmp.key, '-out', csr, '-subj', `/O=pgrepl/OU=${name}`],
      );
      return [
        ...['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-days', String(days)],
        ...['-set_serial', `0x${randomBytes(16).toString('hex')}`, '-extfile', ext, '-out', tmp.cert],
      ];
    },
    { owner, keepKey: false },
  );
  return out;
}

/**
 * Runs the openssl command `argsFor` gives on temporary files, then moves them into place, owned by
 * `owner` (the OS user PostgreSQL runs as, which must own the key it reads). `keepKey`: the
 * command reuses the key in place and writes only a certificate.
 */
async function issue(
  dir: string,
  out: CertFiles,
  argsFor: (tmp: CertFiles) => string[] | Promise<string[]>,
  o: { owner: RunAs | undefined; keepKey: boolean },
): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  if (o.owner) chownSync(dir, o.owner.uid, o.owner.gid);
  const tmp = { cert: `${out.cert}.new`, key: `${out.key}.new` };
  try {
    // The key file exists 0600 before openssl writes a byte of it.
    if (!o.keepKey) writeFileSync(tmp.key, '', { mode: 0o600 });
    await openssl(...(await argsFor(tmp)));
    chmodSync(tmp.cert, 0o600);
    for (const f of o.keepKey ? [tmp.cert] : [tmp.cert, tmp.key])
      if (o.owner) chownSync(f, o.owner.uid, o.owner.gid);
    if (!o.keepKey) renameSync(tmp.key, out.key);
    renameSync(tmp.cert, out.cert);
  } finally {
    for (const f of [tmp.cert, tmp.key, `${tmp.cert}.csr`, `${tmp.cert}.ext`]) rmSync(f, { force: true });
  }
}

async function openssl(...args: string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: 30_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new PgreplError(
      'E_COMMAND_FAILED',
      `openssl ${args[0]} failed${stderr ? `: ${stderr.split('\n')[0]}` : ''} (is openssl installed? Debian: apt-get install openssl)`,
      { cause: err },
    );
  }
}
