import pg from 'pg';
import { PgreplError, SqlError } from '../errors.js';

/** How pgrepl reaches one instance over TCP; the password never leaves this process. */
export interface SqlTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database?: string;
  /** What to call the server in errors (the node's name); host:port when absent. */
  readonly label?: string;
}

/** The slice of a SQL connection that pgrepl's queries need. */
export interface SqlSession {
  query<R extends object>(text: string, values?: readonly unknown[]): Promise<R[]>;
}

/** Opens one connection, runs `fn`, and always closes it. */
export async function withSql<T>(
  target: SqlTarget,
  fn: (s: SqlSession) => Promise<T>,
  timeoutMs = 3000,
): Promise<T> {
  const client = new pg.Client({
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    database: target.database ?? 'postgres',
    connectionTimeoutMillis: timeoutMs,
    application_name: 'pgrepl',
  });
  // A server that dies mid-session emits 'error' on the client; without a listener that crashes the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw new PgreplError(
      'E_UNREACHABLE',
      `could not connect to ${target.host}:${target.port} (${(err as Error).message}); is that server running? \`pgrepl status\` shows which nodes are`,
      { cause: err },
    );
  }
  try {
    return await fn({
      async query<R extends object>(text: string, values?: readonly unknown[]) {
        try {
          const r = await client.query(text, values as unknown[] | undefined);
          return r.rows as R[];
        } catch (err) {
          const e = err as Error & { code?: unknown };
          throw new SqlError(
            target.label ?? `${target.host}:${target.port}`,
            typeof e.code === 'string' ? e.code : null,
            e.message,
            { cause: err },
          );
        }
      },
    });
  } finally {
    // Not awaited: waiting for the server's side of the close costs ~10 ms and tells nothing.
    client.end().catch(() => undefined);
  }
}
