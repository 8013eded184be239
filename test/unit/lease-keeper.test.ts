import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LeaseKeeper } from '../../src/agent/lease-keeper.js';
import type { HeldLease, LeaseCalls } from '../../src/agent/lease-keeper.js';
import { systemClock } from '../../src/cluster/context/clock.js';
import type { Clock } from '../../src/cluster/context/clock.js';
import { manualClock } from '../helpers/manual-clock.js';

const TTL = 4;
const LOOP = 1000;
const RETRY = 1500;

function keeper(clock: Clock, calls: LeaseCalls) {
  const changes: (HeldLease | null)[] = [];
  const errors: unknown[] = [];
  const k = new LeaseKeeper({
    calls,
    clock,
    ttlSeconds: TTL,
    loopWaitMs: LOOP,
    retryTimeoutMs: RETRY,
    marginMs: 500,
    onChange: (l) => changes.push(l),
    onError: (e) => errors.push(e),
  });
  return { k, changes, errors };
}

describe('the lease keeper (issue 31, defects 2 and 6)', () => {
  it('renews on its own timer, every loopWait, whatever else the agent is doing', async () => {
    const { clock, advance } = manualClock();
    const renewedAt: number[] = [];
    const calls: LeaseCalls = {
      grantLease: () => Promise.resolve({ id: 'L1', ttl: TTL }),
      renewLease: () => {
        renewedAt.push(clock.now());
        return Promise.resolve(TTL);
      },
      revokeLease: () => Promise.resolve(),
    };
    const { k, changes } = keeper(clock, calls);
    const stop = new AbortController();
    await k.start(stop.signal);
    await advance(0);
    assert.deepEqual(k.current, { id: 'L1', safeUntil: 1_000_000 + TTL * 1000 - 500 });
    // Ten seconds of, say, a promotion waiting on a replay backlog: the lease lives on.
    await advance(10_000);
    assert.equal(renewedAt.length, 10);
    assert.ok(renewedAt.every((t, i) => i === 0 || t - (renewedAt[i - 1] as number) === LOOP));
    assert.equal(
      k.current?.safeUntil,
      clock.now() + TTL * 1000 - 500 - (clock.now() - (renewedAt.at(-1) as number)),
    );
    assert.ok(changes.length >= 11 && changes.every((c) => c?.id === 'L1'));
    stop.abort();
    await k.stopped();
  });

  it('retries a failed renewal at once, and drops the lease once it may have run out', async () => {
    const { clock, advance } = manualClock();
    let failing = false;
    let tries = 0;
    const calls: LeaseCalls = {
      grantLease: () =>
        failing ? Promise.reject(new Error('etcd does not answer')) : Promise.resolve({ id: 'L1', ttl: TTL }),
      renewLease: () => {
        tries++;
        return failing ? Promise.reject(new Error('etcd does not answer')) : Promise.resolve(TTL);
      },
      revokeLease: () => Promise.resolve(),
    };
    const { k, changes, errors } = keeper(clock, calls);
    const stop = new AbortController();
    await k.start(stop.signal);
    await advance(0);
    failing = true;
    await advance(LOOP);
    assert.equal(tries, 2, 'one renewal and its retry');
    assert.equal(errors.length, 2);
    assert.ok(k.current !== null, 'still alive until safeUntil');
    await advance(TTL * 1000 - LOOP);
    assert.equal(k.current, null);
    assert.equal(changes.at(-1), null, 'the loss is told');
    stop.abort();
    await k.stopped();
  });

  it('grants a new lease when the old one expired unrenewed', async () => {
    const { clock, advance } = manualClock();
    let id = 0;
    const calls: LeaseCalls = {
      grantLease: () => Promise.resolve({ id: `L${++id}`, ttl: TTL }),
      renewLease: () => Promise.resolve(0),
      revokeLease: () => Promise.resolve(),
    };
    const { k } = keeper(clock, calls);
    const stop = new AbortController();
    await k.start(stop.signal);
    await advance(0);
    await advance(LOOP);
    assert.equal(k.current?.id, 'L2');
    stop.abort();
    await k.stopped();
  });

  it('counts the lease on the monotonic clock: a wall clock stepped back an hour moves nothing', async () => {
    const { clock, advance, stepWall } = manualClock();
    const calls: LeaseCalls = {
      grantLease: () => Promise.resolve({ id: 'L1', ttl: TTL }),
      renewLease: () => Promise.resolve(TTL),
      revokeLease: () => Promise.resolve(),
    };
    const { k } = keeper(clock, calls);
    const stop = new AbortController();
    await k.start(stop.signal);
    await advance(0);
    const before = k.current?.safeUntil;
    stepWall(-3_600_000);
    assert.equal(k.current?.safeUntil, before);
    stop.abort();
    await k.stopped();
  });

  it('uses, through the system clock, a time that Date.now stepping back does not move', () => {
    const real = Date.now;
    const a = systemClock.now();
    try {
      Date.now = () => real() - 3_600_000;
      const b = systemClock.now();
      assert.ok(b >= a && b - a < 1000, `monotonic ${a} → ${b}`);
    } finally {
      Date.now = real;
    }
  });
});
