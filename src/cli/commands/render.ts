import { resolve } from 'node:path';
import { renderHostBundle } from '../../deploy/render-host-bundle.js';
import { writeBundle } from '../../deploy/write-bundle.js';
import { PgreplError } from '../../errors.js';
import { commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';

/** `render conf --out DIR [--with-secrets] [--force]` */
export async function runRenderConf(
  g: GlobalOptions,
  o: { out: string; withSecrets?: boolean; force?: boolean },
): Promise<number> {
  const ctx = await commandContext(g);
  let secrets: { superuser: string; replication: string } | undefined;
  if (o.withSecrets) {
    if (ctx.superuserPassword === undefined || ctx.replicationPassword === undefined) {
      throw new PgreplError(
        'E_SECRET',
        'no passwords to put in .env yet: run `pgrepl up` once, or give them in the spec (env or file)',
      );
    }
    secrets = { superuser: ctx.superuserPassword, replication: ctx.replicationPassword };
  }
  const out = resolve(o.out);
  const files = renderHostBundle({
    spec: ctx.spec,
    binDir: ctx.env.bins.binDir,
    pgMajor: ctx.env.bins.major,
    secrets,
  });
  writeBundle(out, files, o.force === true);
  process.stdout.write(
    `wrote ${files.length} files under ${out}: one folder per node; start with ${out}/README.md` +
      `${secrets ? ' (the .env files hold real passwords, mode 0600)' : ' (.env files hold placeholders)'}\n`,
  );
  return 0;
}
