import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { haveEtcd } from '../helpers/ha-agents.js';
import { makeLab } from '../helpers/lab.js';
import type { Lab } from '../helpers/lab.js';
import { LAB_FAULTS, labSettled, moveRaftLeader, raftLeader } from '../helpers/lab-faults.js';
import { runFault } from '../helpers/lab-run.js';
import { canMakeHosts, haveNft } from '../helpers/netns-hosts.js';
import { waitUntil } from '../helpers/test-cluster.js';

/**
 * The fixed fault set of CI on the lab (three hosts of their own, TLS everywhere, the units of
 * `render systemd`, synchronous replication, the fast profile): each fault once on the leader's
 * host under a writer and direct probes of every node. Nothing acknowledged may be lost, no two
 * nodes may take writes at once, and the cluster must stream again after the fault is healed.
 * `npm run soak` runs random schedules of the same faults (issue 13).
 */
describe(
  'faults on hosts of their own: no acknowledged write lost, never two primaries',
  {
    skip: !canMakeHosts()
      ? 'needs root, ip and unshare'
      : !haveEtcd
        ? 'no etcd binary (apt-get install etcd-server)'
        : !haveNft()
          ? 'no nft (apt-get install nftables)'
          : false,
  },
  () => {
    let lab: Lab | undefined;
    before(async () => {
      lab = await makeLab({ mode: 'sync', profile: 'fast' });
      await labSettled(lab, 120_000);
    });
    after(() => lab?.destroy());

    for (const fault of LAB_FAULTS)
      it(fault.name, async (t) => {
        const r = await runFault(lab as Lab, fault);
        const v = r.verdict;
        t.diagnostic(
          `${r.leaderBefore} → ${r.leaderAfter}: ${v.acknowledged} acknowledged, ${v.lost.length} lost, ` +
            `${v.splitBrain.length} split-brain, writes down for ${v.writeGapMs[0]} ms`,
        );
        assert.deepEqual(v.lost, [], 'every acknowledged write is on the primary');
        assert.deepEqual(v.splitBrain, [], 'no two nodes took writes at once');
        assert.notEqual(v.writeGapMs[0], null, 'writes went on after the fault');
        assert.ok(v.acknowledged > 0);
      });

    it('leaves what a failure would be judged by: the faults’ timeline and the agents’ lease and fence trace', async () => {
      const l = lab as Lab;
      const timeline = readFileSync(join(l.base, 'faults.log'), 'utf8');
      for (const fault of LAB_FAULTS) assert.ok(timeline.includes(`inject: ${fault.name}`), fault.name);
      assert.equal(timeline.match(/ healed$/gm)?.length, LAB_FAULTS.length);
      const leader = await labSettled(l, 90_000);
      const log = readFileSync(join(l.base, `${leader}-agent.log`), 'utf8');
      assert.match(log, new RegExp(`${leader}: trace: lease \\d+ safe for \\d+ ms`));
      assert.match(
        log,
        new RegExp(`${leader}: trace: fence watchdog: kill postmaster \\d+ in \\d+ ms unless renewed`),
      );
    });

    it('keeps etcd’s raft leader off the PostgreSQL leader’s host, so that partitioning that host costs no etcd election', async () => {
      const l = lab as Lab;
      const leader = await labSettled(l, 90_000);
      // Put there first (etcd elects whom it likes): the leader's agent must move it away.
      moveRaftLeader(l, l.host(leader));
      await waitUntil(
        () => {
          const raft = raftLeader(l);
          return raft !== null && raft.name !== leader;
        },
        15_000,
        `etcd's raft leader on another host than ${leader}`,
      );
    });
  },
);
