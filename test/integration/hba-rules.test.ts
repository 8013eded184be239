import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import type { TestCluster } from '../helpers/test-cluster.js';
import { clusterForSuite, upCluster } from '../helpers/test-cluster.js';

/** A socket that leaves from `localAddress`, so the server sees a client from another address. */
function socketFrom(localAddress: string): () => Socket {
  return () => {
    const socket = new Socket();
    const connect = socket.connect.bind(socket) as (o: {
      port: number;
      host: string;
      localAddress: string;
    }) => Socket;
    socket.connect = ((port: number, host: string) => connect({ port, host, localAddress })) as never;
    return socket;
  };
}

async function replicationConnect(port: number, password: string, from?: string): Promise<string> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'replicator',
    password,
    database: 'replication',
    replication: 'true',
    ...(from ? { stream: socketFrom(from) } : {}),
  } as pg.ClientConfig);
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await client.query('IDENTIFY_SYSTEM');
    return `ok timeline ${String((r.rows[0] as { timeline: unknown }).timeline)}`;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('pg_hba: replication only from the nodes, SCRAM only', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), { setUp: upCluster });

  it('admits a replication connection from the address the replicas really connect from', async () => {
    assert.match(await replicationConnect(c.port('pg1'), c.replicationPassword()), /^ok timeline 1$/);
  });

  it('rejects a replication connection from an address that is no replica’s, even with the right password', async () => {
    const answer = await replicationConnect(c.port('pg1'), c.replicationPassword(), '127.0.0.9');
    assert.match(answer, /no pg_hba\.conf entry for replication connection from host "127\.0\.0\.9"/);
  });

  it('rejects a wrong password', async () => {
    assert.match(
      await replicationConnect(c.port('pg1'), 'not-the-password'),
      /password authentication failed/,
    );
  });

  it('does not let the replication user into ordinary databases', async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: c.port('pg1'),
      user: 'replicator',
      password: c.replicationPassword(),
      database: 'postgres',
    });
    client.on('error', () => undefined);
    await assert.rejects(client.connect(), /no pg_hba\.conf entry/);
  });

  it('renders no trust rule and names the replication pseudo-database', () => {
    for (const n of ['pg1', 'pg2']) {
      const hba = readFileSync(join(c.dataDir(n), 'pg_hba.conf'), 'utf8');
      const rules = hba.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
      assert.ok(rules.length > 0);
      for (const rule of rules) assert.match(rule, /^host\s+\S+\s+\S+\s+\S+\s+scram-sha-256$/, rule);
      assert.ok(
        rules.some((r) => /^host\s+replication\s+replicator\s+127\.0\.0\.1\/32\s+scram-sha-256$/.test(r)),
      );
    }
  });

  it('stores the replication role password as a SCRAM verifier', async () => {
    const [row] = await c.sql<{ p: string }>(
      'pg1',
      "SELECT rolpassword AS p FROM pg_authid WHERE rolname = 'replicator'",
    );
    assert.match(row?.p ?? '', /^SCRAM-SHA-256\$4096:/);
  });
});
