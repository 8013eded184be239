import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Failsafe } from '../../src/agent/failsafe.js';
import type { FailsafeHost } from '../../src/agent/failsafe.js';
import { LeaseKeeper } from '../../src/agent/lease-keeper.js';
import type { LeaseCalls } from '../../src/agent/lease-keeper.js';
import { leaseMarginMs } from '../../src/agent/agent-state.js';
import { HA_PROFILES } from '../../src/cluster-spec/ha-profiles.js';
import type { HaSpec } from '../../src/cluster-spec/cluster-spec.js';
import type { Clock } from '../../src/cluster/context/clock.js';
import { manualClock } from '../helpers/manual-clock.js';

const HA = { ...HA_PROFILES.default, failsafe: true } as unknown as HaSpec;
type Answer = { node: string; ok: boolean; why: string };

function failsafe(
  clock: Clock,
  o: { kind?: string; holds?: boolean; answers?: () => Promise<Answer[]> } = {},
) {
  const asked: number[] = [];
  const promised: { at: number; until: number }[] = [];
  const host: FailsafeHost = {
    me: 'pg1',
    ha: HA,
    clock,
    askPeers: () => {
      asked.push(clock.now());
      return (o.answers ?? (() => Promise.resolve([{ node: 'pg2', ok: true, why: '' }])))();
    },
    localKind: () => o.kind ?? 'primary',
    lastRead: () => null,
    holdsKey: () => o.holds ?? true,
    promised: (until) => promised.push({ at: clock.now(), until }),
    failed: () => undefined,
    recovered: () => undefined,
  };
  return { f: new Failsafe(host), asked, promised };
}

describe('failsafe (issue 31, defect 12)', () => {
  it('asks as soon as a renewal fails, so the promise reaches the watchdog before the lease runs out', async () => {
    const { clock, advance } = manualClock();
    let etcdUp = true;
    // etcd stopped (SIGSTOP): a request hangs until the client's timeout.
    const call = <T>(v: T) =>
      etcdUp
        ? Promise.resolve(v)
        : clock.sleep(HA.retryTimeoutMs).then(() => Promise.reject(new Error('etcd does not answer')));
    const calls: LeaseCalls = {
      grantLease: () => call({ id: 'L1', ttl: HA.ttlSeconds }),
      renewLease: () => call(HA.ttlSeconds),
      revokeLease: () => call(undefined),
    };
    const { f, asked, promised } = failsafe(clock);
    let safeUntil = 0;
    const keeper = new LeaseKeeper({
      calls,
      clock,
      ttlSeconds: HA.ttlSeconds,
      loopWaitMs: HA.loopWaitMs,
      retryTimeoutMs: HA.retryTimeoutMs,
      marginMs: leaseMarginMs(HA),
      onChange: (l) => {
        if (l) safeUntil = l.safeUntil;
      },
      // As the agent wires it.
      onError: () => void f.renewalFailed(),
    });
    const stop = new AbortController();
    await keeper.start(stop.signal);
    await advance(HA.loopWaitMs * 3);
    // The worst moment: just after a renewal went through.
    etcdUp = false;
    const leaseEnd = safeUntil;
    await advance(HA.ttlSeconds * 1000 * 2);
    assert.ok(asked.length > 0, 'no failsafe round while the lease ran out');
    const first = promised[0];
    assert.ok(
      first !== undefined && first.at < leaseEnd,
      `first promise at ${first?.at}, lease until ${leaseEnd}`,
    );
    assert.ok(first.until > leaseEnd, 'the promise outlasts the lease');
    // Rounds go on while etcd is away: each promise is given before the last one ran out.
    for (let i = 1; i < promised.length; i++)
      assert.ok(
        (promised[i]?.at as number) < (promised[i - 1]?.until as number),
        `promise ${i} came too late`,
      );
    stop.abort();
    etcdUp = true;
    await advance(HA.loopWaitMs);
    await keeper.stopped();
  });

  it('is asked for by a leader’s primary only', async () => {
    const { clock } = manualClock();
    for (const o of [{ kind: 'replica' }, { holds: false }]) {
      const { f, asked } = failsafe(clock, o);
      await f.renewalFailed();
      assert.deepEqual(asked, [], JSON.stringify(o));
    }
  });

  it('makes one round at a time: callers meanwhile join it', async () => {
    const { clock } = manualClock();
    let answer: (a: Answer[]) => void = () => undefined;
    const { f, asked, promised } = failsafe(clock, {
      answers: () => new Promise<Answer[]>((resolve) => (answer = resolve)),
    });
    const rounds = [f.renewalFailed(), f.ask(), f.renewalFailed()];
    answer([{ node: 'pg2', ok: true, why: '' }]);
    await Promise.all(rounds);
    assert.equal(asked.length, 1);
    assert.equal(promised.length, 1);
  });

  it('gives the watchdog nothing when one member refuses', async () => {
    const { clock } = manualClock();
    const { f, promised } = failsafe(clock, {
      answers: () =>
        Promise.resolve([
          { node: 'pg2', ok: true, why: '' },
          { node: 'pg3', ok: false, why: 'its agent does not answer' },
        ]),
    });
    await f.renewalFailed();
    assert.deepEqual(promised, []);
    assert.equal(f.until, 0);
  });
});
