import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { choosePrimary } from '../../src/client/choose-primary.js';
import { parseClusterUrl } from '../../src/client/cluster-url.js';
import { failureKind } from '../../src/client/failure-kind.js';
import { isReadToken, laterToken, tokenPosition } from '../../src/client/read-token.js';
import { PrimaryHistory } from '../../src/client/replica-lag.js';
import { routeRequest } from '../../src/client/route-request.js';
import type { NodeView, RouteRequest } from '../../src/client/route-request.js';
import { REPO } from '../helpers/test-cluster.js';
import { fuzzOptions } from '../helpers/fuzz-options.js';

const node = (name: string, role: NodeView['role'], o: Partial<NodeView> = {}): NodeView => ({
  name,
  role,
  replayLsn: role === 'replica' ? 1000n : null,
  lagBytes: role === 'unknown' ? null : 0,
  lagMs: role === 'unknown' ? null : 0,
  outstanding: 0,
  ...o,
});
const read = (o: Partial<Extract<RouteRequest, { kind: 'read' }>> = {}): RouteRequest => ({
  kind: 'read',
  maxLagMs: 5000,
  maxLagBytes: 1 << 24,
  allowStale: false,
  after: null,
  ...o,
});

const arbNode = fc.record({
  role: fc.constantFrom<NodeView['role']>('primary', 'replica', 'unknown'),
  replayLsn: fc.option(fc.bigInt({ min: 0n, max: 5000n })),
  lagBytes: fc.option(fc.integer({ min: 0, max: 1 << 26 })),
  lagMs: fc.option(fc.integer({ min: 0, max: 20_000 })),
  outstanding: fc.integer({ min: 0, max: 5 }),
});
/** A cluster as a pool may see it: at most one primary (refreshes never name two). */
const arbNodes = fc.array(arbNode, { minLength: 1, maxLength: 5 }).map((ns) => {
  let primaries = 0;
  return ns.map((n, i) => {
    const role = n.role === 'primary' && primaries++ > 0 ? 'replica' : n.role;
    return { ...n, name: `n${i}`, role, replayLsn: role === 'replica' ? n.replayLsn : null };
  });
});
const arbRequest: fc.Arbitrary<RouteRequest> = fc.oneof(
  fc.constant({ kind: 'write' } as const),
  fc.record({
    kind: fc.constant('read' as const),
    maxLagMs: fc.integer({ min: 0, max: 10_000 }),
    maxLagBytes: fc.integer({ min: 0, max: 1 << 25 }),
    allowStale: fc.boolean(),
    after: fc.option(fc.bigInt({ min: 0n, max: 5000n })),
  }),
);

describe('pgrepl/client: where a request goes (issue 14)', () => {
  it('sends writes to the primary, and waits while there is none', () => {
    const r = routeRequest([node('a', 'replica'), node('b', 'primary')], { kind: 'write' });
    assert.deepEqual([r.kind, r.kind === 'node' && r.node], ['node', 'b']);
    const none = routeRequest([node('a', 'replica'), node('b', 'unknown')], { kind: 'write' });
    assert.equal(none.kind, 'wait');
    assert.match(none.reason, /no primary known/);
  });

  it('spreads reads over fresh replicas by outstanding queries, and skips stale and paused ones', () => {
    const nodes = [
      node('p', 'primary'),
      node('r1', 'replica', { outstanding: 2 }),
      node('r2', 'replica', { outstanding: 1 }),
      node('r3', 'replica', { lagMs: 9000 }),
    ];
    const r = routeRequest(nodes, read());
    assert.deepEqual([r.kind === 'node' && r.node], ['r2']);
    assert.match(r.reason, /r2 is 0 bytes and 0 ms behind/);
    const even = [node('p', 'primary'), node('r1', 'replica'), node('r2', 'replica')];
    const picked = [0, 1, 2, 3].map((turn) => {
      const x = routeRequest(even, read(), turn);
      return x.kind === 'node' ? x.node : null;
    });
    assert.deepEqual(picked, ['r1', 'r2', 'r1', 'r2'], 'equal replicas take turns');
    const allStale = [node('p', 'primary'), node('r3', 'replica', { lagBytes: 1 << 25 })];
    assert.deepEqual(routeRequest(allStale, read()), {
      kind: 'node',
      node: 'p',
      replayed: null,
      reason: 'a read, no replica within the lag bounds: the primary p',
    });
  });

  it('reads stale replicas only with allowStale, and only when no primary answers', () => {
    const nodes = [node('p', 'unknown'), node('r', 'replica', { lagMs: 60_000 })];
    assert.equal(routeRequest(nodes, read()).kind, 'wait');
    const r = routeRequest(nodes, read({ allowStale: true }));
    assert.deepEqual([r.kind === 'node' && r.node], ['r']);
    assert.match(r.reason, /stale, as allowStale permits/);
  });

  it('sends a read after a token to a replica that replayed it, checked again on its connection', () => {
    const nodes = [
      node('p', 'primary'),
      node('behind', 'replica', { replayLsn: 10n }),
      node('ahead', 'replica', { replayLsn: 500n, outstanding: 3 }),
    ];
    const r = routeRequest(nodes, read({ after: 100n }));
    assert.deepEqual(r.kind === 'node' && [r.node, r.replayed], ['ahead', 100n]);
    const none = routeRequest([nodes[0] as NodeView, nodes[1] as NodeView], read({ after: 100n }));
    assert.deepEqual(none.kind === 'node' && [none.node, none.replayed], ['behind', 100n]);
    assert.match(none.reason, /may replay it in time/);
  });

  it('never routes a read to a node that did not answer, nor outside its bounds, nor a write to a replica', () => {
    fc.assert(
      fc.property(arbNodes, arbRequest, fc.nat(10), (nodes, req, turn) => {
        const r = routeRequest(nodes, req, turn);
        const primary = nodes.find((n) => n.role === 'primary');
        if (r.kind === 'wait') {
          assert.equal(primary, undefined, 'waits only without a primary');
          return;
        }
        const to = nodes.find((n) => n.name === r.node) as NodeView;
        assert.notEqual(to.role, 'unknown');
        if (req.kind === 'write') return assert.equal(to.role, 'primary');
        if (to.role === 'primary') return assert.equal(r.replayed, null);
        const within =
          to.lagBytes !== null &&
          to.lagMs !== null &&
          to.lagBytes <= req.maxLagBytes &&
          to.lagMs <= req.maxLagMs;
        if (req.after !== null) {
          assert.ok(within, 'a read after a token goes to a replica within the bounds');
          assert.equal(r.replayed, req.after, 'whose connection must show the token replayed');
        } else if (!within) {
          assert.ok(req.allowStale && primary === undefined, 'stale only with allowStale and no primary');
        } else {
          const best = Math.min(
            ...nodes
              .filter(
                (n) =>
                  n.role === 'replica' &&
                  n.lagBytes !== null &&
                  n.lagMs !== null &&
                  n.lagBytes <= req.maxLagBytes &&
                  n.lagMs <= req.maxLagMs,
              )
              .map((n) => n.outstanding),
          );
          assert.equal(to.outstanding, best, 'the least busy fresh replica');
        }
      }),
      fuzzOptions(2000),
    );
  });
});

describe('pgrepl/client: which node takes writes', () => {
  const primary = (timeline: number) => ({ recovery: false, readOnly: false, lsn: 100n, timeline });
  const replica = { recovery: true, readOnly: false, lsn: 90n, timeline: null };
  it('sends no write to a primary that refuses writes (an upgrade fences the cluster it leaves)', () => {
    const fenced = { recovery: false, readOnly: true, lsn: 100n, timeline: 3 };
    assert.deepEqual(
      choosePrimary(
        [
          { name: 'old', probe: fenced },
          { name: 'new', probe: primary(1) },
        ],
        undefined,
      ),
      { primary: 'new', reason: 'new answers as the primary' },
    );
    const cutover = choosePrimary(
      [
        { name: 'old', probe: fenced },
        { name: 'new', probe: { ...fenced, timeline: 1 } },
      ],
      undefined,
    );
    assert.equal(cutover.primary, null);
    assert.match(cutover.reason, /old, new answer as a primary refusing writes/);
  });
  it('takes the one node that answers as a primary, the later timeline of two, and neither of two on one', () => {
    assert.deepEqual(
      choosePrimary(
        [
          { name: 'a', probe: primary(1) },
          { name: 'b', probe: replica },
        ],
        undefined,
      ),
      {
        primary: 'a',
        reason: 'a answers as the primary',
      },
    );
    const two = choosePrimary(
      [
        { name: 'old', probe: primary(3) },
        { name: 'new', probe: primary(4) },
      ],
      undefined,
    );
    assert.equal(two.primary, 'new');
    const tie = choosePrimary(
      [
        { name: 'a', probe: primary(4) },
        { name: 'b', probe: primary(4) },
      ],
      undefined,
    );
    assert.deepEqual(tie, {
      primary: null,
      reason: 'a and b answer as primaries on timeline 4: writes to neither',
    });
    assert.equal(
      choosePrimary(
        [
          { name: 'a', probe: null },
          { name: 'b', probe: replica },
        ],
        undefined,
      ).primary,
      null,
    );
  });

  it('takes, with agents, only the node holding their leader key', () => {
    const answers = [
      { name: 'old', probe: primary(5) },
      { name: 'next', probe: replica },
    ];
    assert.deepEqual(choosePrimary(answers, null), {
      primary: null,
      reason: 'the agents name no leader (a failover under way)',
    });
    assert.equal(choosePrimary(answers, 'next').primary, null, 'not before it answers as a primary');
    assert.equal(
      choosePrimary(
        [
          { name: 'old', probe: primary(5) },
          { name: 'next', probe: primary(5) },
        ],
        'next',
      ).primary,
      'next',
    );
  });
});

describe('pgrepl/client: replica lag on the pool’s own clock', () => {
  it('counts a replica behind from when the primary first stood past its position', () => {
    const h = new PrimaryHistory(4);
    assert.deepEqual(h.lagOf(0n, 0), { bytes: null, ms: null });
    h.add({ at: 1000, lsn: 100n });
    h.add({ at: 2000, lsn: 200n });
    h.add({ at: 3000, lsn: 300n });
    assert.deepEqual(h.lagOf(300n, 3000), { bytes: 0, ms: 0 }, 'caught up');
    assert.deepEqual(h.lagOf(150n, 3000), { bytes: 150, ms: 1000 }, 'behind since the sample at 2000');
    assert.deepEqual(h.lagOf(50n, 3500), { bytes: 250, ms: 2500 });
    h.add({ at: 4000, lsn: 400n });
    h.add({ at: 5000, lsn: 500n });
    assert.deepEqual(h.lagOf(50n, 5000), { bytes: 450, ms: 3000 }, 'at least since the oldest sample kept');
    h.add({ at: 6000, lsn: 10n });
    assert.deepEqual(
      h.lagOf(10n, 6000),
      { bytes: 0, ms: 0 },
      'a new primary (a lower position) starts afresh',
    );
  });
});

describe('pgrepl/client: tokens, URIs and failures', () => {
  it('reads tokens as LSNs, and refuses anything else', () => {
    assert.equal(tokenPosition('1/0'), 1n << 32n);
    assert.equal(laterToken('0/10', '0/9'), '0/10');
    assert.equal(laterToken(null, '0/9'), '0/9');
    assert.ok(isReadToken('16/B374D848'));
    for (const bad of ['', '0/', 'x/1', '0/123456789', 42, null]) assert.equal(isReadToken(bad), false);
    assert.throws(() => tokenPosition('; DROP TABLE'), /not a read token/);
  });

  it('reads the multi-host URI that `pgrepl url` prints', () => {
    const u = parseClusterUrl(
      'postgresql://app:p%40ss@10.0.0.11:5432,[::1]:5433,db3/shop?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.crt',
    );
    assert.deepEqual(u, {
      hosts: [
        { host: '10.0.0.11', port: 5432 },
        { host: '::1', port: 5433 },
        { host: 'db3', port: 5432 },
      ],
      user: 'app',
      password: 'p@ss',
      database: 'shop',
      sslmode: 'verify-full',
      sslrootcert: '/etc/ca.crt',
    });
    assert.equal(parseClusterUrl('postgres://h').sslmode, 'disable');
    assert.throws(() => parseClusterUrl('mysql://h'), /not a postgresql:\/\/ URI/);
    assert.throws(() => parseClusterUrl('postgresql://h:99999/db'), /not a port/);
    assert.throws(() => parseClusterUrl('postgresql://h/db?sslmode=maybe'), /not an sslmode/);
  });

  it('retries only what cannot have been applied', () => {
    assert.equal(failureKind({ code: '25006' }, true), 'not-primary');
    assert.equal(failureKind(new Error('connect ECONNREFUSED'), false), 'not-sent');
    assert.equal(failureKind(new Error('Connection terminated unexpectedly'), true), 'outcome-unknown');
    assert.equal(failureKind({ code: '57P01' }, true), 'outcome-unknown');
    assert.equal(failureKind({ code: 'ECONNRESET' }, true), 'outcome-unknown');
    assert.equal(failureKind({ code: '23505' }, true), 'sql');
  });

  it('imports nothing of pgrepl outside src/client (an application loads no server-side code)', () => {
    const dir = join(REPO, 'src', 'client');
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
      const text = readFileSync(join(dir, f), 'utf8');
      for (const [, from] of text.matchAll(/from '([^']+)'/g))
        assert.ok(
          from?.startsWith('./') || from?.startsWith('node:') || from === 'pg',
          `${f} imports ${from}: the client depends on pg and node alone`,
        );
    }
  });
});
