import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { haveEtcd } from '../helpers/ha-agents.js';
import { makeLab } from '../helpers/lab.js';
import type { Lab } from '../helpers/lab.js';
import { LAB_FAULTS, labSettled } from '../helpers/lab-faults.js';
import { runFault } from '../helpers/lab-run.js';
import { canMakeHosts } from '../helpers/netns-hosts.js';

/**
 * `render compose --ha` on three hosts (the lab), without a container engine: each service is run
 * by its entrypoint as its container would run it, as root in the host's namespaces with the
 * folder mounted, the etcd member first. The entrypoints install each folder and start the units'
 * commands; the agents form the cluster over TLS and fail over when the leader's host dies (issue 13).
 */
describe(
  'render compose --ha: the entrypoints of every folder form and run a cluster',
  {
    skip: !canMakeHosts()
      ? 'needs root, ip and unshare'
      : haveEtcd
        ? false
        : 'no etcd binary (apt-get install etcd-server)',
  },
  () => {
    let lab: Lab | undefined;
    before(async () => {
      lab = await makeLab({ via: 'compose', mode: 'sync' });
    });
    after(() => lab?.destroy());

    it('forms it: the first node primary, the others streaming from it over TLS', async () => {
      const l = lab as Lab;
      assert.equal(await labSettled(l, 120_000), 'n1');
      const st = await l.status();
      assert.equal(st.healthy, true, st.warnings.join('\n'));
      for (const n of st.nodes.filter((x) => x.name !== 'n1'))
        assert.match(n.tls.replication ?? '', /^TLS/, `${n.name} streams over TLS`);
    });

    it("fails over when the leader's host dies, nothing acknowledged lost", async () => {
      const death = LAB_FAULTS.find((f) => f.name.startsWith('kill -9 of the leader host'));
      assert.ok(death);
      const r = await runFault(lab as Lab, death);
      assert.notEqual(r.leaderAfter, r.leaderBefore);
      assert.deepEqual(r.verdict.lost, []);
      assert.deepEqual(r.verdict.splitBrain, []);
    });
  },
);
