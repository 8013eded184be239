import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { observeCluster } from '../../cluster/observe/observe-cluster.js';
import { roleOf } from '../../cluster/observe/observation.js';
import { requireSuperuserPassword, trustedCaFile } from '../../cluster/context/cluster-context.js';
import { nodeOf } from '../../cluster/context/node-sql.js';
import { PgreplError } from '../../errors.js';
import { commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';

/** Opens psql as the cluster superuser on NODE, or on whichever node is the primary now. */
export async function runPsql(
  g: GlobalOptions,
  nodeName: string | undefined,
  args: string[],
): Promise<number> {
  const ctx = await commandContext(g);
  // The name first: a mistyped node is a usage mistake whatever state the cluster is in.
  let node = nodeName === undefined ? undefined : nodeOf(ctx, nodeName);
  requireSuperuserPassword(ctx);
  if (node === undefined) {
    const primary = (await observeCluster(ctx)).nodes.find((o) => roleOf(o) === 'primary');
    if (!primary)
      throw new PgreplError(
        'E_NO_PRIMARY',
        'no primary is running; name a node (`pgrepl psql pg2`) or run `pgrepl start`',
      );
    node = primary.node;
  }
  const psql = psqlBinary(ctx.env.bins.binDir);
  const caFile = trustedCaFile(ctx, node);
  // The password travels in a 0600 passfile named in the environment, never in argv.
  const child = spawn(
    psql,
    ['-h', node.host, '-p', String(node.port), '-U', ctx.spec.superuser.name, '-d', 'postgres', ...args],
    {
      stdio: 'inherit',
      env: {
        ...process.env,
        PGPASSFILE: ctx.paths.superuserPassfile,
        PGAPPNAME: 'pgrepl psql',
        ...(caFile ? { PGSSLMODE: 'verify-full', PGSSLROOTCERT: caFile } : {}),
      },
    },
  );
  return new Promise((resolvePromise, reject) => {
    child.on('error', (err) =>
      reject(new PgreplError('E_COMMAND_FAILED', `could not run ${psql}: ${err.message}`, { cause: err })),
    );
    child.on('close', (code) => resolvePromise(code ?? 1));
  });
}

function psqlBinary(binDir: string): string {
  try {
    accessSync(join(binDir, 'psql'), constants.X_OK);
    return join(binDir, 'psql');
  } catch {
    return 'psql';
  }
}
