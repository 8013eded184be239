import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { keptSession } from '../../src/postgres/sql-client.js';
import type { SqlTarget } from '../../src/postgres/sql-client.js';
import { assertNoLeakedServers, TestCluster, upCluster, waitUntil } from '../helpers/test-cluster.js';

// The agent's loop keeps one session to its own server and looks at once when that session is
// lost: how it hears of a postmaster that died between two loops.
describe('a kept session', () => {
  let c: TestCluster;
  let target: SqlTarget;
  before(async () => {
    c = await TestCluster.create(['pg1']);
    await upCluster(c);
    target = { host: '127.0.0.1', port: c.port('pg1'), user: 'postgres', password: c.superuserPassword() };
  });
  after(async () => {
    await c.cleanup();
    assertNoLeakedServers();
  });

  const backendPid = async (s: ReturnType<typeof keptSession>) =>
    (await s.use((q) => q.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')))[0]!.pid;

  it('tells of a connection the server ended, connects again on its next use, and is silent about its own close', async () => {
    let lost = 0;
    const s = keptSession(target, 2000, () => lost++);
    const first = await backendPid(s);
    assert.equal(await backendPid(s), first, 'one connection, kept across uses');
    await c.sql('pg1', 'SELECT pg_terminate_backend($1)', [first]);
    await waitUntil(() => lost === 1, 5000, 'the session to be told lost');
    assert.notEqual(await backendPid(s), first, 'a new connection after the lost one');
    s.close();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(lost, 1, 'closing it is not losing it');
  });

  it('tells of a postmaster that died: its backend ends the connection', async () => {
    let lost = 0;
    const s = keptSession(target, 2000, () => lost++);
    await backendPid(s);
    process.kill(c.postmasterPid('pg1')!, 'SIGKILL');
    await waitUntil(() => lost === 1, 5000, 'the session to be told lost');
    s.close();
  });
});
