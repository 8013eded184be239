import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { agentContext } from '../../src/agent/agent-context.js';
import { controlOf } from '../../src/cluster/actions/control-of.js';
import type { ClusterContext } from '../../src/cluster/context/cluster-context.js';
import { PgreplError } from '../../src/errors.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';

const NODES = 'nodes:\n  - { name: pg1, port: 5432 }\n  - { name: pg2, port: 5433 }\n';
const parse = (ha: string, nodes = NODES) =>
  parseSpec(`cluster: demo\nstateDir: /tmp/pgrepl-ha-spec\n${ha}${nodes}`, 'pgrepl.yaml', '/work');
const fails = (ha: string, message: RegExp, nodes = NODES) =>
  assert.throws(
    () => parse(ha, nodes),
    (e: unknown) => e instanceof PgreplError && e.code === 'E_SPEC_INVALID' && message.test(e.message),
  );

describe('the ha section of the spec', () => {
  it('takes the default profile’s timings, in whole seconds of TTL', () => {
    const spec = parse('ha: {}\n');
    assert.deepEqual(
      spec.ha && {
        ttl: spec.ha.ttlSeconds,
        loop: spec.ha.loopWaitMs,
        retry: spec.ha.retryTimeoutMs,
        etcd: spec.ha.etcd,
      },
      { ttl: 4, loop: 1000, retry: 1500, etcd: undefined },
    );
    assert.equal(spec.nodes[0]?.failoverPriority, 1);
    assert.equal(spec.nodes[0]?.noFailover, false);
    assert.equal(parse('').ha, undefined);
  });

  it('takes https:// etcd endpoints with TLS files and an etcd user, paths beside the spec (issue 13)', () => {
    const spec = parse(
      'ha:\n  etcd: ["https://10.0.0.5:2379"]\n  etcdTls: { ca: tls/ca.crt, cert: tls/pgrepl.crt, key: /etc/pgrepl/pgrepl.key }\n  etcdUser: { name: pgrepl, password: { env: ETCD_PASSWORD } }\n',
    );
    assert.deepEqual(spec.ha?.etcdTls, {
      ca: '/work/tls/ca.crt',
      cert: '/work/tls/pgrepl.crt',
      key: '/etc/pgrepl/pgrepl.key',
    });
    assert.deepEqual(spec.ha?.etcdUser, { name: 'pgrepl', password: { kind: 'env', name: 'ETCD_PASSWORD' } });
  });

  it('refuses TLS files or an etcd user with an http:// endpoint, or without endpoints, and a cert without its key', () => {
    fails(
      'ha:\n  etcd: ["https://10.0.0.5:2379", "http://10.0.0.6:2379"]\n  etcdUser: { name: pgrepl, password: { env: P } }\n',
      /ha\.etcdUser: an etcd user's password is sent over https:\/\/ only, and ha\.etcd lists http:\/\/10\.0\.0\.6:2379/,
    );
    fails(
      'ha:\n  etcdTls: { ca: ca.crt }\n',
      /ha\.etcdTls: TLS is used over https:\/\/ only, and ha\.etcd lists no endpoint/,
    );
    fails(
      'ha:\n  etcd: ["https://10.0.0.5:2379"]\n  etcdTls: { ca: ca.crt, cert: c.crt }\n',
      /cert and key go together/,
    );
  });

  it('lets the fast profile and single keys override, and strips a trailing slash from etcd URLs', () => {
    const spec = parse('ha: { profile: fast, loopWait: 0.2, etcd: ["http://10.0.0.5:2379/"] }\n');
    assert.equal(spec.ha?.ttlSeconds, 1);
    assert.equal(spec.ha?.loopWaitMs, 200);
    assert.deepEqual(spec.ha?.etcd, ['http://10.0.0.5:2379']);
  });

  it('refuses timings where a leader renewing late would lose its key (Patroni’s rule)', () => {
    fails(
      'ha: { ttl: 3, loopWait: 1, retryTimeout: 1.5 }\n',
      /pgrepl\.yaml:\d+:\d+: ha\.ttl: loopWait \+ 2 × retryTimeout is 4 s, more than ttl 3 s/,
    );
  });

  it('refuses an agent API port that another node uses, or beyond 65535', () => {
    fails('ha: { apiPortOffset: 1 }\n', /pg1's agent API would listen on 5433, the port of another node/);
    fails(
      'ha: { apiPortOffset: 30000 }\n',
      /would listen on 65432|no port/,
      'nodes:\n  - { name: pg1, port: 40000 }\n  - { name: pg2, port: 40001 }\n',
    );
  });

  it('refuses a cluster where no node may be promoted, and an etcd entry that is no URL', () => {
    fails(
      'ha: {}\n',
      /at least one node must be allowed to be promoted/,
      'nodes:\n  - { name: pg1, port: 5432, noFailover: true }\n  - { name: pg2, port: 5433, failoverPriority: 0 }\n',
    );
    fails('ha: { etcd: ["10.0.0.5:2379"] }\n', /an etcd client URL/);
  });
});

describe('an agent’s context', () => {
  it('makes only its own node local: every other node’s control refuses, even on this machine', async () => {
    const spec = parse('ha: {}\n');
    const base = {
      spec,
      localNodes: new Set(['pg1', 'pg2']),
      env: { runAs: undefined },
    } as unknown as ClusterContext;
    const ctx = agentContext(base, spec.nodes[1]!);
    assert.deepEqual([...ctx.localNodes], ['pg2']);
    await assert.rejects(
      controlOf(ctx, spec.nodes[0]!).start(),
      (e: unknown) => (e as PgreplError).code === 'E_NOT_LOCAL',
    );
    assert.throws(
      () => controlOf(ctx, spec.nodes[0]!).readWal(1, 0n, 1, 16),
      (e: unknown) => (e as PgreplError).code === 'E_NOT_LOCAL',
    );
    assert.deepEqual(
      controlOf(ctx, spec.nodes[0]!).readDisk(() => true),
      { local: false },
    );
  });

  it('refuses to run for a node of another host', () => {
    const spec = parse('ha: {}\n');
    const base = {
      spec,
      localNodes: new Set(['pg1']),
      env: { runAs: undefined },
    } as unknown as ClusterContext;
    assert.throws(
      () => agentContext(base, spec.nodes[1]!),
      (e: unknown) => (e as PgreplError).code === 'E_NOT_LOCAL',
    );
  });
});
