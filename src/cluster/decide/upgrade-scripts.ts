import { DDL_BLOCK_TRIGGER, UPGRADE_PUBLICATION } from '../../postgres/upgrade-names.js';

/*
 * What `pgrepl upgrade` runs on the new cluster from what pg_dump and pg_dumpall printed on the old
 * one: SQL a driver can send, without psql's meta-commands and without pgrepl's own objects of the
 * upgrade. Pure.
 */

/**
 * Statements of a dump that must not reach the new cluster: the upgrade's own event trigger (its
 * function lives in a schema pg_dump is told to leave out) and publications (made by the new spec).
 */
const OWN_STATEMENT = new RegExp(
  `^(?:(?:CREATE|ALTER|COMMENT ON) EVENT TRIGGER ${DDL_BLOCK_TRIGGER}|(?:CREATE|ALTER) PUBLICATION ${UPGRADE_PUBLICATION})\\b[^;]*;\\n`,
  'gm',
);

/**
 * `pg_dump --schema-only` output as SQL for a driver: psql's meta-commands (`\restrict`, `\connect`
 * and the like, one per line) dropped, and the upgrade's own objects.
 */
export function schemaScript(dump: string): string {
  return dump
    .split('\n')
    .filter((line) => !line.startsWith('\\'))
    .join('\n')
    .replace(OWN_STATEMENT, '');
}

/**
 * `pg_dumpall --roles-only` output as SQL for the new cluster: the CREATE ROLE of a role it already
 * has (its superuser, its replication role) dropped, as psql's meta-commands; the ALTER ROLE that
 * follows each keeps its attributes and password hash, so every role logs in with the same password.
 */
export function rolesScript(dump: string, existing: readonly string[]): string {
  const have = new Set(existing);
  return dump
    .split('\n')
    .filter((line) => {
      if (line.startsWith('\\')) return false;
      const m = /^CREATE ROLE ("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*);$/.exec(line);
      return !(m?.[1] !== undefined && have.has(unquoteIdent(m[1])));
    })
    .join('\n');
}

const unquoteIdent = (s: string) => (s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s);
