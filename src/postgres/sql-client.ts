import { existsSync, readFileSync } from 'node:fs';
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
  /** Connect over TLS, checking the server's certificate and host name; absent: no TLS. */
  readonly tls?: SqlTls;
}

export interface SqlTls {
  /** The CA file the server's certificate is checked against. */
  readonly caFile: string;
  /**
   * When the server does not offer TLS, or there is no CA file yet, connect without it: only for a
   * server on this machine (traffic that never leaves it), while a cluster turns TLS on and its
   * servers have not yet reloaded. Never for a server reached over a network.
   */
  readonly plainIfRefused: boolean;
}

/** The slice of a SQL connection that pgrepl's queries need. */
export interface SqlSession {
  query<R extends object>(text: string, values?: readonly unknown[]): Promise<R[]>;
}

/**
 * pgrepl's own statements (the replication role, slots, checks) never wait for a synchronous
 * standby: in sync mode a primary being set up has none yet, and a CREATE ROLE would wait forever.
 * They write where clients may not: an upgrade's clusters refuse their clients' writes by default
 * (the new one until its cutover, the old one after it), and pgrepl still makes roles, slots,
 * publications and subscriptions there.
 */
const OWN_SESSION_OPTIONS = '-c synchronous_commit=local -c default_transaction_read_only=off';

/** A client for `target`, not yet connected; `queryTimeoutMs` also bounds each query. */
function clientFor(
  target: SqlTarget,
  timeoutMs: number,
  queryTimeoutMs: number | undefined,
  tls: SqlTls | undefined,
): pg.Client {
  return new pg.Client({
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    database: target.database ?? 'postgres',
    connectionTimeoutMillis: timeoutMs,
    ...(queryTimeoutMs === undefined ? {} : { query_timeout: queryTimeoutMs }),
    application_name: 'pgrepl',
    options: OWN_SESSION_OPTIONS,
    // Read at each connection: a CA renewed on disk is used from the next one on. pg checks the
    // certificate's names against the host it dialled, an IP address included (verify-full).
    ...(tls ? { ssl: { ca: readFileSync(tls.caFile, 'utf8'), rejectUnauthorized: true } } : {}),
  });
}

const NO_TLS_OFFERED = 'The server does not support SSL connections';

/**
 * Connects a client for `target`: over TLS when asked, again without it when the server offers
 * none and that is allowed (SqlTls.plainIfRefused). `setUp` attaches listeners before connecting.
 */
async function connectClient(
  target: SqlTarget,
  timeoutMs: number,
  queryTimeoutMs: number | undefined,
  setUp: (c: pg.Client) => void,
): Promise<pg.Client> {
  const attempt = async (tls: SqlTls | undefined) => {
    const c = clientFor(target, timeoutMs, queryTimeoutMs, tls);
    setUp(c);
    try {
      await c.connect();
      return c;
    } catch (err) {
      c.end().catch(() => undefined);
      throw err;
    }
  };
  // No CA yet: TLS was just asked for and `up` has not made it; such a server offers no TLS either.
  if (target.tls?.plainIfRefused && !existsSync(target.tls.caFile)) return attempt(undefined);
  try {
    return await attempt(target.tls);
  } catch (err) {
    if (target.tls?.plainIfRefused && (err as Error).message === NO_TLS_OFFERED) return attempt(undefined);
    throw err;
  }
}

/** The session over a connected client: a refused statement becomes an SqlError naming the node. */
function sessionOf(client: pg.Client, target: SqlTarget): SqlSession {
  return {
    async query<R extends object>(text: string, values?: readonly unknown[]) {
      try {
        return (await client.query(text, values as unknown[] | undefined)).rows as R[];
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
  };
}

/**
 * Opens one connection, runs `fn`, and always closes it. `timeoutMs` bounds the connection;
 * `queryTimeoutMs`, when given, each query (a long action must not wait on a server forever).
 */
export async function withSql<T>(
  target: SqlTarget,
  fn: (s: SqlSession) => Promise<T>,
  timeoutMs = 3000,
  queryTimeoutMs?: number,
): Promise<T> {
  let client: pg.Client;
  try {
    // A server that dies mid-session emits 'error' on the client; without a listener that crashes the process.
    client = await connectClient(target, timeoutMs, queryTimeoutMs, (c) => c.on('error', () => undefined));
  } catch (err) {
    throw new PgreplError(
      'E_UNREACHABLE',
      `could not connect to ${target.host}:${target.port} (${(err as Error).message}); is that server running? \`pgrepl status\` shows which nodes are`,
      { cause: err },
    );
  }
  try {
    return await fn(sessionOf(client, target));
  } finally {
    // Not awaited: waiting for the server's side of the close costs ~10 ms and tells nothing.
    client.end().catch(() => undefined);
  }
}

/**
 * One connection kept open across calls, opened again after it broke: a loop that asks a server
 * every second would otherwise pay a connection and a SCRAM exchange each time. Each query gives
 * up after `timeoutMs` (and drops the connection, which may be stuck). `onLost` hears of a
 * connection the server ended (a backend exits at once when its postmaster dies), not of one this
 * side dropped or closed.
 */
export interface KeptSession {
  use<T>(fn: (s: SqlSession) => Promise<T>): Promise<T>;
  close(): void;
}

export function keptSession(target: SqlTarget, timeoutMs: number, onLost?: () => void): KeptSession {
  let client: pg.Client | null = null;
  const drop = () => {
    client?.end().catch(() => undefined);
    client = null;
  };
  const open = async (): Promise<pg.Client> => {
    if (client) return client;
    let c: pg.Client;
    try {
      c = await connectClient(target, timeoutMs, timeoutMs, (fresh) => {
        // pg emits 'error' and then 'end' for a connection the server broke, only 'end' for one it closed.
        const lost = () => {
          if (client !== fresh) return;
          client = null;
          onLost?.();
        };
        fresh.on('error', lost);
        fresh.on('end', lost);
      });
    } catch (err) {
      throw new PgreplError(
        'E_UNREACHABLE',
        `could not connect to ${target.label ?? target.host}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    client = c;
    return c;
  };
  return {
    async use(fn) {
      const c = await open();
      try {
        return await fn(sessionOf(c, target));
      } catch (err) {
        // A server error leaves the connection usable; anything else (a timeout, a reset) may not.
        if (!(err instanceof SqlError && err.sqlstate !== null)) drop();
        throw err;
      }
    },
    close: drop,
  };
}
