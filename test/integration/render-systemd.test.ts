import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { haveEtcd } from '../helpers/ha-agents.js';
import { makeLab } from '../helpers/lab.js';
import { labSettled } from '../helpers/lab-faults.js';
import type { Lab } from '../helpers/lab.js';
import { canMakeHosts } from '../helpers/netns-hosts.js';
import type { TestHost } from '../helpers/netns-hosts.js';

/**
 * `render systemd` on three hosts (the lab: a network namespace and private disks each): every
 * folder's install.sh runs as root on its host, unchanged, then what each installed unit's
 * ExecStart and User say (the etcd member, the agent). The agents form the cluster over TLS; the
 * operator's commands run from a fourth namespace with none of the hosts' files (issue 13).
 */
describe(
  'render systemd: installed on three hosts, the units form a cluster over TLS',
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
      lab = await makeLab();
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

    it("switches over and pauses from the operator's namespace, through etcd and the agents alone", async () => {
      const l = lab as Lab;
      const sw = await l.cli(['switchover', '--to', 'n2']);
      assert.equal(sw.code, 0, `${sw.stdout}${sw.stderr}`);
      assert.equal(await labSettled(l, 60_000), 'n2');
      for (const cmd of ['pause', 'unpause']) {
        const r = await l.cli([cmd]);
        assert.equal(r.code, 0, `${cmd}: ${r.stdout}${r.stderr}`);
      }
    });

    it('keeps every file on its own host, and the operator reads the history from etcd', async () => {
      const l = lab as Lab;
      const [h1, h2] = l.hosts as [TestHost, TestHost];
      const pgVersion = '/var/lib/pgrepl/lab/data/n1/PG_VERSION';
      assert.equal(l.net.run(h1, ['test', '-e', pgVersion]).code, 0);
      assert.equal(l.net.run(h2, ['test', '-e', pgVersion]).code, 1);
      const r = await l.cli(['history', '--json']);
      const ops = (JSON.parse(r.stdout) as { op: string; node: string }[]).map((e) => `${e.op} ${e.node}`);
      // The old primary, stopped cleanly to hand over, either started read-only at once and
      // followed n2 (nothing to record) or was rejoined to it once n2 led: both are fine.
      assert.deepEqual(ops.filter((o) => o !== 'rejoin n1').sort(), [
        'initialize n1',
        'rejoin n2',
        'rejoin n3',
        'switchover n2',
      ]);
    });
  },
);
