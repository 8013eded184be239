import { readRole } from './instance-queries.js';
import { scramVerifier, verifierMatches } from './scram-verifier.js';
import type { SqlSession } from './sql-client.js';

/**
 * Creates (or repairs) the LOGIN REPLICATION role with `password`, sending only a SCRAM verifier;
 * a role whose stored verifier was made from another password gets the new one.
 */
export async function ensureReplicationRole(
  s: SqlSession,
  user: string,
  password: string,
): Promise<'created' | 'altered' | 'unchanged'> {
  const role = await readRole(s, user);
  if (role?.loginReplication && verifierMatches(password, role.verifier)) return 'unchanged';
  // Identifiers and the verifier are interpolated because DDL takes no bind parameters; both are
  // safe: the role name matched ^[a-z_][a-z0-9_]*$ in the spec, the verifier is base64 and '$'.
  const verb = role ? 'ALTER' : 'CREATE';
  await s.query(`${verb} ROLE "${user}" WITH LOGIN REPLICATION PASSWORD '${scramVerifier(password)}'`);
  return role ? 'altered' : 'created';
}

/** Creates a physical slot that reserves WAL from the moment it exists; a no-op if it is there. */
export async function ensurePhysicalSlot(s: SqlSession, slot: string): Promise<'created' | 'unchanged'> {
  const rows = await s.query<{ slot_name: string }>(
    'SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  if (rows.length > 0) return 'unchanged';
  await s.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
  return 'created';
}
