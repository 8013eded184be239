/*
 * Names of the objects `pgrepl upgrade` makes on both clusters, shared by what makes them and what
 * keeps them out of the schema copy.
 */

/** The schema of the function behind the DDL block (pg_dump is told to leave it out). */
export const UPGRADE_SCHEMA = 'pgrepl_upgrade';
/** The event trigger that refuses DDL on the old cluster while an upgrade runs. */
export const DDL_BLOCK_TRIGGER = 'pgrepl_upgrade_block_ddl';
/** The publication of every table on both clusters (old to new, then new to old for a rollback). */
export const UPGRADE_PUBLICATION = 'pgrepl_upgrade';

/** The subscription (and slot) of database number `i` (from 1): names must be unique per cluster. */
export const upgradeSubscription = (i: number) => `pgrepl_upgrade_${i}`;
/** The reverse subscription (and its slot on the new cluster) of database number `i`, after the cutover. */
export const rollbackSubscription = (i: number) => `pgrepl_rollback_${i}`;
