import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { etcdClient } from '../../src/dcs/etcd-client.js';
import { haStore, REQUEST_TTL_SECONDS } from '../../src/dcs/ha-store.js';
import type { HaStore } from '../../src/dcs/ha-store.js';
import { haveEtcd } from '../helpers/ha-agents.js';
import { startTestEtcd } from '../helpers/etcd.js';
import type { TestEtcd } from '../helpers/etcd.js';

/**
 * Issue 31, defect 4: every write a leader makes compares that the leader key is still on its
 * lease. A leader deposed while it was stopped (SIGSTOP, a partition) resumes with its old lease:
 * nothing it writes may reach what the next election reads.
 */
describe(
  'the HA store: a deposed leader writes nothing (issue 31)',
  { skip: haveEtcd ? false : 'no etcd binary (apt-get install etcd-server)' },
  () => {
    let etcd: TestEtcd;
    let store: HaStore;
    let n = 0;

    before(async () => {
      etcd = await startTestEtcd();
    });
    after(async () => etcd?.stop());

    /** A store on a cluster name of its own: each test starts from no keys. */
    const fresh = () => {
      store = haStore(etcdClient({ endpoints: [etcd.url], requestTimeoutMs: 2000 }), `c${++n}`);
      return store;
    };

    /** The key for `node` on `lease`, running as primary already, in async mode (no set). */
    const asPrimary = (node: string, lease: string) =>
      ({ node, lease, ready: true, followable: true, sync: null, syncRevision: 0 }) as const;

    /** pg1 leads on its lease, which then ends (as if it had expired); pg2 takes the key. */
    const deposed = async () => {
      const s = fresh();
      const old = (await s.grantLease(60)).id;
      assert.ok(await s.takeLeader(asPrimary('pg1', old)));
      assert.ok(await s.recordPosition(old, { lsn: '0/3000000', timeline: 1, node: 'pg1' }));
      await s.revokeLease(old);
      const next = (await s.grantLease(60)).id;
      const sync = { count: 1, standbys: ['pg1', 'pg3'] };
      // Pending until announced: no standby follows pg2 yet, pg1's set (none) stays in force.
      const pending = { ...sync, replaces: null };
      const read = await s.read();
      assert.ok(
        await s.takeLeader({
          node: 'pg2',
          lease: next,
          ready: false,
          followable: false,
          sync: pending,
          syncRevision: read.syncRevision,
        }),
      );
      assert.deepEqual((await s.read()).view.sync, pending);
      assert.ok(await s.announceLeader('pg2', next, { lsn: '0/4000000', timeline: 2, node: 'pg2' }, sync));
      return { s, old, next, sync };
    };

    it("puts an operator's requests on a lease that etcd ends, not an age any host's clock judges", async () => {
      const client = etcdClient({ endpoints: [etcd.url], requestTimeoutMs: 2000 });
      const s = haStore(client, `c${++n}`);
      await s.requestSwitchover({ from: 'pg1', to: 'pg2', at: 1 });
      await s.requestFailover({ to: 'pg3', force: false, at: 2 });
      const { kvs: keys } = await client.list(`/pgrepl/c${n}/`);
      const requests = keys.filter((kv) => /\/(switchover|failover)$/.test(kv.key));
      assert.equal(requests.length, 2, keys.map((kv) => kv.key).join(', '));
      for (const kv of requests) {
        assert.notEqual(kv.lease, '0', `${kv.key} lives on a lease`);
        const left = await client.timeToLive(kv.lease);
        assert.ok(left > REQUEST_TTL_SECONDS - 5 && left <= REQUEST_TTL_SECONDS, `${kv.key}: ${left} s left`);
      }
    });

    it('gives no one the key on a read of the synchronous set that is no longer current', async () => {
      const s = fresh();
      const stale = await s.read();
      const first = (await s.grantLease(60)).id;
      const set = { count: 1, standbys: ['pg2', 'pg3'] };
      const sync = { ...set, replaces: null };
      assert.ok(
        await s.takeLeader({
          node: 'pg1',
          lease: first,
          ready: false,
          followable: false,
          sync,
          syncRevision: 0,
        }),
      );
      assert.ok(await s.announceLeader('pg1', first, null, set));
      assert.ok(await s.releaseLeader(first));
      // pg2 decided on what it read before pg1 led: pg1's set, now in force, would be lost.
      const second = (await s.grantLease(60)).id;
      const taking = {
        node: 'pg2',
        lease: second,
        ready: false,
        followable: false,
        sync: { count: 1, standbys: ['pg1', 'pg3'], replaces: null },
      };
      assert.equal(await s.takeLeader({ ...taking, syncRevision: stale.syncRevision }), false);
      const now = await s.read();
      assert.equal(now.view.leader, null);
      assert.deepEqual(now.view.sync, set);
      assert.ok(
        await s.takeLeader({
          ...taking,
          sync: { ...taking.sync, replaces: set },
          syncRevision: now.syncRevision,
        }),
      );
    });

    it('refuses the old leader every write, and leaves what the new one recorded', async () => {
      const { s, old, next, sync } = await deposed();
      assert.equal(await s.recordPosition(old, { lsn: '0/9000000', timeline: 1, node: 'pg1' }), false);
      assert.equal(await s.recordSyncSet(old, { count: 2, standbys: ['pg2', 'pg3'] }), false);
      assert.equal(await s.announceLeader('pg1', old, null), false);
      assert.equal(await s.releaseLeader(old), false);
      assert.equal(await s.refuseSwitchover(old, { from: 'pg1', to: 'pg3', at: 1 }, 'no'), false);
      const after = await s.read();
      assert.equal(after.view.leader?.node, 'pg2');
      assert.equal(after.view.leader?.lease, next);
      assert.deepEqual(after.view.lastLeaderLsn, { lsn: '0/4000000', timeline: 2, node: 'pg2' });
      assert.deepEqual(after.view.sync, sync);
      assert.equal(after.switchoverRefused, null);
    });

    it('lets the holder write, and take nothing already held', async () => {
      const { s, old, next } = await deposed();
      assert.equal(await s.takeLeader(asPrimary('pg1', old)), false);
      assert.ok(await s.recordPosition(next, { lsn: '0/5000000', timeline: 2, node: 'pg2' }));
      assert.ok(await s.releaseLeader(next, { position: { lsn: '0/6000000', timeline: 2, node: 'pg2' } }));
      const after = await s.read();
      assert.equal(after.view.leader, null);
      assert.equal(after.view.lastLeaderLsn?.lsn, '0/6000000');
    });

    it('lets one backup run at a time, claimed by the leader alone, and frees it with the lease (issue 28)', async () => {
      const { s, old, next } = await deposed();
      const claim = { node: 'pg2', type: 'incr', at: 1 };
      assert.equal(
        await s.claimBackup(old, { ...claim, node: 'pg1' }),
        false,
        'a deposed leader claims nothing',
      );
      assert.ok(await s.claimBackup(next, claim));
      assert.equal(await s.claimBackup(next, claim), false, 'one at a time');
      const ended = {
        node: 'pg2',
        type: 'incr' as const,
        startedAt: 1,
        endedAt: 2,
        ok: true,
        label: 'L',
        error: null,
      };
      await s.finishBackup({ lastEnded: { incr: 2 }, last: ended, lastOk: ended });
      assert.deepEqual((await s.readBackupSchedule()).lastOk, ended);
      assert.ok(await s.claimBackup(next, claim), 'free again once finished');
      // The leader dies mid-backup: its claim goes with its lease.
      await s.revokeLease(next);
      const third = (await s.grantLease(60)).id;
      assert.ok(await s.takeLeader(asPrimary('pg3', third)));
      assert.ok(await s.claimBackup(third, { ...claim, node: 'pg3' }));
    });

    it('tells a watcher what a change means to an agent', async () => {
      const s = fresh();
      const from = await s.revision();
      const seen: string[] = [];
      const stop = new AbortController();
      const watching = s.watch(from, stop.signal, (events) => {
        for (const e of events) {
          const c = s.classify(e, 'pg1');
          seen.push(c.kind === 'control' ? `control${c.leaderGone ? ' leader gone' : ''}` : c.kind);
          if (seen.length === 4) stop.abort();
        }
      });
      const lease = (await s.grantLease(60)).id;
      await s.takeLeader({ node: 'pg2', lease, ready: true, followable: true, sync: null, syncRevision: 0 });
      await s.publishMember({ node: 'pg3' } as never, lease);
      await s.setPaused(true);
      await s.releaseLeader(lease);
      await watching;
      await s.takeLeader(asPrimary('pg2', lease));
    });
  },
);
