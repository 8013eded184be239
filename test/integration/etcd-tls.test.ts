import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { issueCa, issueCert } from '../../src/cluster/actions/issue-cert.js';
import { etcdClient } from '../../src/dcs/etcd-client.js';
import type { EtcdClient } from '../../src/dcs/etcd-client.js';
import { findEtcd, localEtcdArgs } from '../../src/dcs/local-etcd.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { etcdConnection } from '../../src/ha/ha-services.js';
import { requestJson } from '../../src/dcs/http-json.js';
import type { TlsMaterial } from '../../src/dcs/http-json.js';
import { freePort, waitUntil } from '../helpers/test-cluster.js';

const PASSWORD = 'Root-Secret-9f2c';

/**
 * etcd as on real hosts (issue 13): clients over TLS with certificates of the cluster's CA
 * (--client-cert-auth), and an etcd user with a password.
 */
describe('the etcd client against etcd with TLS and a user (issue 13)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgrepl-etcd-tls-'));
  const tlsDir = join(dir, 'tls');
  let url = '';
  let tls: TlsMaterial;
  let etcd: ChildProcess | undefined;
  const stop = async () => {
    const child = etcd;
    etcd = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(child.pid as number, 'SIGKILL');
    await exited;
  };
  const client = (o: { tls?: TlsMaterial; auth?: { user: string; password: string } } = {}) =>
    etcdClient({ endpoints: [url], requestTimeoutMs: 2000, tls, ...o });

  before(async () => {
    const ca = await issueCa(tlsDir, 'test', 30);
    const server = await issueCert(tlsDir, ca, 'etcd', ['127.0.0.1'], 30);
    const agent = await issueCert(tlsDir, ca, 'pgrepl', ['pgrepl'], 30);
    tls = { ca: readFileSync(ca.cert), cert: readFileSync(agent.cert), key: readFileSync(agent.key) };
    const clientPort = await freePort();
    let peerPort = await freePort();
    while (peerPort === clientPort) peerPort = await freePort();
    url = `https://127.0.0.1:${clientPort}`;
    const args = [
      ...localEtcdArgs({ dataDir: join(dir, 'data'), clientPort, peerPort }).filter(
        (a) => !/^--(listen|advertise)-client-urls=/.test(a),
      ),
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--cert-file=${server.cert}`,
      `--key-file=${server.key}`,
      `--trusted-ca-file=${ca.cert}`,
      '--client-cert-auth',
      // Tokens unused for a second are forgotten, so that the test sees one refused.
      '--auth-token-ttl=1',
    ];
    const log = openSync(join(dir, 'etcd.log'), 'a');
    etcd = spawn(findEtcd(process.env), args, { stdio: ['ignore', log, log] });
    // /version answers without a user, also once auth is on.
    await waitUntil(
      () =>
        requestJson(`${url}/version`, null, AbortSignal.timeout(500), {}, tls).then(
          () => true,
          () => false,
        ),
      15_000,
      'etcd answering over TLS',
    );
  });
  after(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads, writes, leases and watches over TLS with the client certificate', async () => {
    const c = client();
    await c.put('/t/a', 'um');
    assert.equal((await c.get('/t/a'))?.value, 'um');
    const lease = await c.grant(5);
    assert.ok((await c.keepAlive(lease.id)) > 0);
    const seen: string[] = [];
    const ac = new AbortController();
    const watching = c.watch(
      '/t/w',
      { afterRevision: (await c.list('/t/')).revision, signal: ac.signal },
      (ev) => seen.push(...ev.map((e) => e.kv.value)),
    );
    await c.put('/t/w', 'dois');
    await waitUntil(() => seen.includes('dois'), 5000, 'the watched put');
    ac.abort();
    await watching;
  });

  it('keeps one connection for clients made from the same files, as status --watch makes one each round', async () => {
    // Connections established to etcd's port, from /proc (kept-alive idle sockets are no active handle).
    const port = Number(new URL(url).port).toString(16).toUpperCase().padStart(4, '0');
    const tlsSockets = () =>
      readFileSync('/proc/net/tcp', 'utf8')
        .split('\n')
        .filter((l) => {
          const f = l.trim().split(/\s+/);
          return f[2]?.endsWith(`:${port}`) && f[3] === '01';
        }).length;
    const copy = (): TlsMaterial => ({
      ca: Buffer.from(tls.ca),
      cert: Buffer.from(tls.cert!),
      key: Buffer.from(tls.key!),
    });
    await client({ tls: copy() }).get('/t/a');
    const before = tlsSockets();
    for (let round = 0; round < 10; round++) await client({ tls: copy() }).get('/t/a');
    assert.equal(tlsSockets(), before);
  });

  it('refuses an etcd whose certificate another CA signed, and etcd refuses a client without a certificate', async () => {
    const other = await issueCa(join(dir, 'other'), 'other', 30);
    await assert.rejects(client({ tls: { ca: readFileSync(other.cert) } }).get('/t/a'), (err: Error) => {
      assert.equal((err as { code?: string }).code, 'E_ETCD');
      assert.match(err.message, /certificate/);
      return true;
    });
    await assert.rejects(client({ tls: { ca: tls.ca } }).get('/t/a'), { code: 'E_ETCD' });
  });

  it('refuses to send a password to an http:// endpoint', () => {
    assert.throws(
      () =>
        etcdClient({
          endpoints: ['http://127.0.0.1:2379'],
          requestTimeoutMs: 1000,
          auth: { user: 'root', password: PASSWORD },
        }),
      (err: Error) => (err as { code?: string }).code === 'E_USAGE' && /never in clear/.test(err.message),
    );
  });

  describe('with etcd auth enabled', () => {
    before(async () => {
      const root = client();
      const gw = async (path: string, body: object) => {
        const r = await requestJson(`${url}/v3${path}`, body, AbortSignal.timeout(2000), {}, tls);
        assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
      };
      await root.get('/t/a');
      await gw('/auth/user/add', { name: 'root', password: PASSWORD });
      await gw('/auth/role/add', { name: 'root' });
      await gw('/auth/user/grant', { user: 'root', role: 'root' });
      await gw('/auth/enable', {});
    });

    it('works as the user, with a token it asks for again once etcd has forgotten it', async () => {
      const c: EtcdClient = client({ auth: { user: 'root', password: PASSWORD } });
      await c.put('/t/auth', 'três');
      await new Promise((r) => setTimeout(r, 2500));
      // etcd dropped the idle token (--auth-token-ttl=1): the client asks for a new one by itself.
      assert.equal((await c.get('/t/auth'))?.value, 'três');
    });

    it('is reached from a spec: ha.etcd, ha.etcdTls and ha.etcdUser, as agents and commands read them', async () => {
      const spec = parseSpec(
        [
          'cluster: demo',
          'ha:',
          `  etcd: ["${url}"]`,
          `  etcdTls: { ca: ${join(tlsDir, 'ca.crt')}, cert: ${join(tlsDir, 'pgrepl.crt')}, key: ${join(tlsDir, 'pgrepl.key')} }`,
          '  etcdUser: { name: root, password: { env: PGREPL_TEST_ETCD_PASSWORD } }',
          'nodes: [{ name: pg1, port: 5432 }]',
          '',
        ].join('\n'),
        'pgrepl.yaml',
        dir,
      );
      const ha = spec.ha!;
      const c = etcdClient({
        ...etcdConnection(spec, ha, { PGREPL_TEST_ETCD_PASSWORD: PASSWORD }),
        requestTimeoutMs: 2000,
      });
      await c.put('/t/spec', 'quatro');
      assert.equal((await c.get('/t/spec'))?.value, 'quatro');
      assert.throws(() => etcdConnection(spec, ha, {}), { code: 'E_SECRET' });
    });

    it('opens a watch again with a new token once etcd has forgotten the one the watch was refused with', async () => {
      const c: EtcdClient = client({ auth: { user: 'root', password: PASSWORD } });
      const from = (await c.list('/t/')).revision;
      await new Promise((r) => setTimeout(r, 2500));
      const watchOnce = async () => {
        const seen: string[] = [];
        const ac = new AbortController();
        const watching = c.watch('/t/ww', { afterRevision: from, signal: ac.signal }, (ev) =>
          seen.push(...ev.map((e) => e.kv.value)),
        );
        const ended: string = await Promise.race<string>([
          watching.then(
            () => 'ended',
            (err: Error) => err.message,
          ),
          new Promise((r) => setTimeout(r, 1000, 'open')),
        ]);
        ac.abort();
        await watching.catch(() => undefined);
        return ended;
      };
      // The first is cancelled for its token (the caller opens another, as the agent does)…
      assert.match(await watchOnce(), /invalid auth token/);
      // …and the next asks for a new token and stays open.
      assert.equal(await watchOnce(), 'open');
    });

    it('says the user was not let in, without the password, when the password is wrong', async () => {
      await assert.rejects(
        client({ auth: { user: 'root', password: 'wrong-one' } }).get('/t/auth'),
        (err: Error) => {
          assert.equal((err as { code?: string }).code, 'E_ETCD');
          assert.match(err.message, /did not let user root in/);
          assert.doesNotMatch(err.message, /wrong-one/);
          return true;
        },
      );
    });
  });
});
