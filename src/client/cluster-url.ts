/**
 * libpq's multi-host connection URI, as `pgrepl url` prints it
 * (postgresql://user@h1:5432,h2:5432/db?sslmode=verify-full&sslrootcert=/path/ca.crt), read into what
 * the pool needs: node-postgres parses one host only.
 */
export interface ClusterUrl {
  readonly hosts: readonly { readonly host: string; readonly port: number }[];
  readonly user?: string;
  readonly password?: string;
  readonly database?: string;
  /** sslmode (libpq's default, prefer, is taken as disable: node-postgres does not fall back). */
  readonly sslmode: 'disable' | 'require' | 'verify-ca' | 'verify-full';
  readonly sslrootcert?: string;
}

const SSLMODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;

export function parseClusterUrl(url: string): ClusterUrl {
  const m = /^postgres(?:ql)?:\/\/([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?$/.exec(url.trim());
  if (!m) throw new TypeError('not a postgresql:// URI (e.g. postgresql://user@h1:5432,h2:5432/db)');
  const [, authority = '', path = '', query = ''] = m;
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at) : '';
  const hostlist = at >= 0 ? authority.slice(at + 1) : authority;
  const [rawUser = '', ...rawPassword] = userinfo.split(':');
  const params = new URLSearchParams(query);
  const hosts = hostlist.split(',').map((h) => {
    const hm = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(h);
    if (!hm) throw new TypeError(`a host of the URI is not host[:port]: ${JSON.stringify(h)}`);
    const port = Number(hm[3] ?? params.get('port') ?? 5432);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError(`not a port: ${hm[3]}`);
    return { host: decodeURIComponent(hm[1] ?? hm[2] ?? ''), port };
  });
  if (hostlist === '') throw new TypeError('the URI names no host');
  const mode = params.get('sslmode') ?? 'prefer';
  if (!(SSLMODES as readonly string[]).includes(mode)) throw new TypeError(`not an sslmode: ${mode}`);
  const user = params.get('user') ?? (rawUser ? decodeURIComponent(rawUser) : undefined);
  const password =
    params.get('password') ??
    (rawPassword.length > 0 ? decodeURIComponent(rawPassword.join(':')) : undefined);
  const database = params.get('dbname') ?? (path ? decodeURIComponent(path) : undefined);
  const rootcert = params.get('sslrootcert');
  return {
    hosts,
    ...(user === undefined ? {} : { user }),
    ...(password === undefined ? {} : { password }),
    ...(database === undefined ? {} : { database }),
    sslmode: mode === 'allow' || mode === 'prefer' ? 'disable' : (mode as ClusterUrl['sslmode']),
    ...(rootcert === null ? {} : { sslrootcert: rootcert }),
  };
}
