import pg from 'pg';
import type { TestCluster } from './test-cluster.js';

/** Runs `text` on a server `pgrepl restore` started on 127.0.0.1:`port`, as the cluster's superuser (no TLS: it has none). */
export async function queryRestored<R extends pg.QueryResultRow>(
  c: TestCluster,
  port: number,
  text: string,
): Promise<R[]> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password: c.superuserPassword(),
    database: 'postgres',
  });
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}
