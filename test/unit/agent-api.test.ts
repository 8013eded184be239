import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { ClientRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startAgentApi } from '../../src/agent/agent-api.js';
import type { AgentApi } from '../../src/agent/agent-api.js';
import { initialAgentState } from '../../src/agent/agent-state.js';
import type { NodeOperationResult } from '../../src/ha/node-operation.js';
import { systemClock } from '../../src/cluster/context/clock.js';
import { freePort } from '../helpers/test-cluster.js';

const TOKEN = 'a'.repeat(64);

const idle = initialAgentState('pg1');

/** Sends the headers of a POST and `first` bytes of its body, and resolves with the status that comes back. */
function postPartly(
  port: number,
  path: string,
  o: { auth?: string; declared?: number; first: number; chunked?: boolean },
): { status: Promise<number>; req: ClientRequest } {
  const req = request({
    host: '127.0.0.1',
    port,
    path,
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(o.auth ? { authorization: o.auth } : {}),
      ...(o.declared !== undefined ? { 'content-length': o.declared } : {}),
    },
  });
  const status = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
  req.write(Buffer.alloc(o.first, 0x20));
  return { status, req };
}

describe('the agent API takes a request body only from whom it trusts (issue 31, defect 8)', () => {
  let api: AgentApi;
  let port: number;
  const ran: string[] = [];
  const result = (): Promise<NodeOperationResult> => {
    ran.push('restart');
    return Promise.resolve({ node: 'pg1' } as unknown as NodeOperationResult);
  };

  before(async () => {
    port = await freePort();
    api = await startAgentApi({
      host: '127.0.0.1',
      port,
      ttlMs: 1000,
      state: () => idle,
      clock: systemClock,
      maximumLagOnFailover: 1048576,
      nodes: () => [{ name: 'pg1', host: '10.0.0.1', port: 5432 }],
      nodeTags: () => ({}),
      failsafe: () => null,
      token: TOKEN,
      tokenFile: '/nonexistent/api-token',
      operations: { restart: result, reload: result, stop: result, start: result, leave: result },
      cluster: {
        switchover: () => Promise.resolve({}),
        failover: () => Promise.resolve({}),
        pause: () => Promise.resolve({}),
      },
    });
  });

  after(() => api.close());

  it(
    'refuses a POST without the token on its headers, before its body has come',
    { timeout: 5000 },
    async () => {
      // Ten megabytes announced, one kilobyte sent: the answer may not wait for the rest.
      const { status, req } = postPartly(port, '/restart', { declared: 10 * 1024 * 1024, first: 1024 });
      assert.equal(await status, 401);
      req.destroy();
      const wrong = postPartly(port, '/restart', {
        auth: `Bearer ${'b'.repeat(64)}`,
        declared: 5000,
        first: 10,
      });
      assert.equal(await wrong.status, 401);
      wrong.req.destroy();
      assert.deepEqual(ran, []);
    },
  );

  it(
    'refuses an announced body past the limit before reading it, and a streamed one once it passes it',
    { timeout: 5000 },
    async () => {
      const announced = postPartly(port, '/restart', {
        auth: `Bearer ${TOKEN}`,
        declared: 10 * 1024 * 1024,
        first: 1024,
      });
      assert.equal(await announced.status, 413);
      announced.req.destroy();
      // No content-length: chunked, and cut off at the limit.
      const streamed = postPartly(port, '/restart', { auth: `Bearer ${TOKEN}`, first: 70 * 1024 });
      assert.equal(await streamed.status, 413);
      streamed.req.destroy();
      assert.deepEqual(ran, []);
    },
  );

  it("tells in /status where each node's server listens (pgrepl/client follows the leader there)", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/status`);
    const body = (await res.json()) as { nodes: unknown };
    assert.deepEqual(body.nodes, [{ name: 'pg1', host: '10.0.0.1', port: 5432 }]);
  });

  it('runs a request with the token and a small body', async () => {
    const ok = postPartly(port, '/restart', { auth: `Bearer ${TOKEN}`, declared: 2, first: 0 });
    ok.req.end('{}');
    assert.equal(await ok.status, 200);
    assert.deepEqual(ran, ['restart']);
  });
});
