import { requireSuperuserPassword, trustedCaFile } from '../../cluster/context/cluster-context.js';
import { nodeOf } from '../../cluster/context/node-sql.js';
import { commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';

export interface UrlOptions {
  node?: string;
  withPassword?: boolean;
  user?: string;
  database?: string;
}

/**
 * Prints a libpq URI: one node, or all nodes with target_session_attrs=read-write so that any
 * libpq client finds the primary. The password appears only when asked for. With TLS, it asks libpq
 * to check the servers' certificates against the CA on this machine.
 */
export async function runUrl(g: GlobalOptions, o: UrlOptions): Promise<number> {
  const ctx = await commandContext(g);
  const nodes = o.node === undefined ? ctx.spec.nodes : [nodeOf(ctx, o.node)];
  const user = encodeURIComponent(o.user ?? ctx.spec.superuser.name);
  const password = o.withPassword ? `:${encodeURIComponent(requireSuperuserPassword(ctx))}` : '';
  const hosts = nodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',');
  const first = nodes[0];
  const caFile = first && trustedCaFile(ctx, first);
  const params = [
    ...(o.node === undefined && nodes.length > 1 ? ['target_session_attrs=read-write'] : []),
    // With TLS the servers admit no other connection; verify-full also checks each one's name.
    ...(caFile ? ['sslmode=verify-full', `sslrootcert=${encodeURIComponent(caFile)}`] : []),
  ];
  const query = params.length > 0 ? `?${params.join('&')}` : '';
  process.stdout.write(
    `postgresql://${user}${password}@${hosts}/${encodeURIComponent(o.database ?? 'postgres')}${query}\n`,
  );
  return 0;
}
