import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { failoverBoundMs, HA_PROFILES } from '../../src/cluster-spec/ha-profiles.js';
import type { TestCluster } from '../helpers/test-cluster.js';
import { haClusterForSuite, haveEtcd } from '../helpers/ha-agents.js';

const NODES = ['pg1', 'pg2', 'pg3'];

/**
 * The default profile (ttl 4 s) with its defaults, failsafe on, as most users run it: a dead host
 * fails over within the profile's bound (issue 31, defect 10); an etcd outage longer than the TTL
 * leaves a healthy primary writing, and stops it when a member cannot promise (defect 12). The
 * other fault tests run on the fast profile with failsafe off, to keep the suite short.
 */
describe(
  'automatic failover on the default profile',
  { skip: haveEtcd ? false : 'no etcd binary (apt-get install etcd-server)' },
  () => {
    let c: TestCluster;
    const agents = haClusterForSuite(
      NODES,
      'replication:\n  mode: sync\nha:\n  profile: default\n',
      (made) => (c = made),
    );

    const etcdPid = () =>
      (JSON.parse(readFileSync(join(c.base, 'state', 'ha', 'etcd.pid'), 'utf8')) as { pid: number }).pid;

    /** Stops etcd for `ms` (SIGSTOP: every request to it hangs), under the writer; when it stopped and went on. */
    const outage = async (ms: number, meanwhile: (leader: string) => void = () => undefined) => {
      const at = { stopped: 0, resumed: 0 };
      const r = await agents.underLoad(
        async (leader) => {
          process.kill(etcdPid(), 'SIGSTOP');
          at.stopped = Date.now();
          meanwhile(leader);
          await new Promise((resolve) => setTimeout(resolve, ms));
          at.resumed = Date.now();
          process.kill(etcdPid(), 'SIGCONT');
        },
        async () => {
          const up = await c.cli(['up', '--ha']);
          assert.equal(up.code, 0, up.stderr);
        },
      );
      return { r, ...at };
    };

    it('keeps a healthy primary writing through an etcd outage longer than the TTL (failsafe, issue 31)', async () => {
      const { r, stopped, resumed } = await outage(6000);
      // Past the lease (4 s): only the failsafe promises keep it writable.
      const late = r.acks.filter((a) => a.sentAt > stopped + 4500 && a.ackAt < resumed);
      assert.ok(late.length > 0, 'writes acknowledged after the lease would have run out');
      assert.equal(r.leader, r.before, 'the same leader throughout');
      console.log(`# etcd outage 6 s, failsafe on: the writer's longest gap ${r.longestGapMs} ms`);
    });

    it('stops writes through an etcd outage when a member cannot promise (its agent is down)', async () => {
      let down = '';
      const { r, stopped, resumed } = await outage(6000, (leader) => {
        down = NODES.find((n) => n !== leader) as string;
        process.kill(agents.agentPid(down), 'SIGKILL');
      });
      // Its lease (4 s, less its margin) is all it has: no write past it while etcd is down.
      const late = r.acks.filter((a) => a.sentAt > stopped + 4000 && a.ackAt < resumed);
      assert.deepEqual(late, [], `no write acknowledged with ${down}'s agent down`);
    });

    it('fails over when the leader’s host dies, within the profile’s bound', async () => {
      const r = await agents.underLoad(
        async (leader) => {
          agents.killHost(leader);
          await agents.waitFor(
            async () => {
              const s = await agents.status(NODES.find((n) => n !== leader) as string);
              return s?.leader?.ready === true && s.leader.node !== leader;
            },
            30_000,
            'another leader',
          );
        },
        async () => {
          const up = await c.cli(['up', '--ha']);
          assert.equal(up.code, 0, up.stderr);
        },
      );
      assert.notEqual(r.leader, r.before);
      const bound = failoverBoundMs(HA_PROFILES.default);
      console.log(
        `# host death, default profile: first write ${r.firstWriteMs} ms after the kill (bound ${bound} ms)`,
      );
      assert.ok(
        r.firstWriteMs !== null && r.firstWriteMs <= bound,
        `first write ${r.firstWriteMs} ms, bound ${bound} ms`,
      );
    });
  },
);
