import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import { checkResult } from '../../postgres/command-runner.js';
import { toolPath } from '../../postgres/find-binaries.js';
import { quoteConninfo, verifyFullConninfo } from '../../postgres/render-postgresql-conf.js';
import { sqlIdent, sqlLiteral } from '../../postgres/sql-quote.js';
import { UPGRADE_SCHEMA } from '../../postgres/upgrade-names.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { trustedCaFile } from '../context/cluster-context.js';
import { sqlOn, sqlOnDatabase } from '../context/node-sql.js';
import { rolesScript, schemaScript } from '../decide/upgrade-scripts.js';

/** What the schema copy made on the new cluster. */
export interface SchemaCopy {
  readonly roles: number;
  readonly databasesCreated: readonly string[];
}

/**
 * Copies what logical replication does not carry from the old cluster's primary to the new one's:
 * the roles (with their password hashes: clients log in unchanged), each database, and its schema
 * (pg_dump --schema-only of the old installation: a newer server reads an older dump).
 */
export async function copySchema(
  from: ClusterContext,
  fromPrimary: NodeSpec,
  to: ClusterContext,
  toPrimary: NodeSpec,
  databases: readonly string[],
): Promise<SchemaCopy> {
  const dumpall = await dump(from, fromPrimary, 'pg_dumpall', ['--roles-only'], 'postgres');
  const existing = await sqlOn(to, toPrimary, (s) =>
    s.query<{ name: string }>('SELECT rolname AS name FROM pg_roles'),
  );
  const roles = rolesScript(
    dumpall,
    existing.map((r) => r.name),
  );
  await sqlOn(to, toPrimary, (s) => s.query(roles));
  const facts = await sqlOn(from, fromPrimary, (s) =>
    s.query<{ name: string; owner: string; encoding: string; collate: string; ctype: string }>(
      `SELECT datname AS name, pg_get_userbyid(datdba) AS owner, pg_encoding_to_char(encoding) AS encoding,
              datcollate AS collate, datctype AS ctype
         FROM pg_database WHERE datname = ANY($1::text[])`,
      [databases],
    ),
  );
  const present = new Set(
    (
      await sqlOn(to, toPrimary, (s) => s.query<{ name: string }>('SELECT datname AS name FROM pg_database'))
    ).map((r) => r.name),
  );
  const created: string[] = [];
  for (const d of facts.filter((f) => !present.has(f.name))) {
    await sqlOn(to, toPrimary, (s) =>
      s.query(
        `CREATE DATABASE ${sqlIdent(d.name)} OWNER ${sqlIdent(d.owner)} TEMPLATE template0 ENCODING ${sqlLiteral(d.encoding)} ` +
          `LC_COLLATE ${sqlLiteral(d.collate)} LC_CTYPE ${sqlLiteral(d.ctype)}`,
      ),
    );
    created.push(d.name);
  }
  for (const database of databases) {
    const schema = schemaScript(
      await dump(
        from,
        fromPrimary,
        'pg_dump',
        ['--schema-only', `--exclude-schema=${UPGRADE_SCHEMA}`],
        database,
      ),
    );
    await sqlOnDatabase(to, toPrimary, database, (s) => s.query(schema));
  }
  return { roles: existing.length, databasesCreated: created };
}

/** pg_dump or pg_dumpall of the old installation against its primary, as the superuser (passfile, TLS as the cluster has it). */
async function dump(
  ctx: ClusterContext,
  node: NodeSpec,
  tool: 'pg_dump' | 'pg_dumpall',
  args: readonly string[],
  database: string,
): Promise<string> {
  const conninfo = [
    ...Object.entries({
      host: node.host,
      port: String(node.port),
      user: ctx.spec.superuser.name,
      dbname: database,
      passfile: ctx.paths.superuserPassfile,
    }).map(([k, v]) => `${k}=${quoteConninfo(v)}`),
    ...verifyFullConninfo(trustedCaFile(ctx, node)),
  ].join(' ');
  const r = await ctx.env.runner.run(
    toolPath(ctx.env.bins, tool),
    [...args, '--no-password', `--dbname=${conninfo}`],
    { runAs: ctx.env.runAs },
  );
  checkResult(`${tool} of ${database} on ${node.name}`, r);
  return r.stdout;
}
