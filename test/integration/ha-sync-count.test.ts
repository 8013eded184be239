import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestCluster, alive, assertNoLeakedServers } from '../helpers/test-cluster.js';
import type { CliResult } from '../helpers/test-cluster.js';
import { haAgents, haveEtcd } from '../helpers/ha-agents.js';

const NODES = ['pg1', 'pg2', 'pg3'];

interface HaJson {
  ha: { leader: string | null; synchronous: { count: number; standbys: string[]; leader?: string } | null };
}

/**
 * Issue 31, defect 1: in quorum mode a higher count asks less of a candidate (n − k + 1
 * confirmations), so a count raised under a writer must reach etcd only once the standbys hold
 * every commit acknowledged under the lower one. Here one standby's WAL receiver is frozen while
 * the other acknowledges commits alone (ANY 1), the count goes to 2, and the leader and the
 * acknowledging standby die inside that window: the frozen standby must not take over, or those
 * commits are lost.
 */
describe(
  'a quorum count raised under a writer (issue 31)',
  { skip: haveEtcd ? false : 'no etcd binary (apt-get install etcd-server)' },
  () => {
    let c: TestCluster;
    const agents = haAgents(() => c, NODES);
    const frozen: number[] = [];
    let setMode: Promise<CliResult> | null = null;

    before(async () => {
      c = await TestCluster.create(
        NODES,
        'replication:\n  mode: quorum\n  syncCount: 1\nha:\n  profile: fast\n',
      );
      const up = await c.cli(['up', '--ha']);
      assert.equal(up.code, 0, up.stderr);
    });

    after(async () => {
      for (const pid of frozen) if (alive(pid)) process.kill(pid, 'SIGCONT');
      await setMode;
      await c?.cleanup();
      assertNoLeakedServers();
    });

    const synchronous = async () =>
      (JSON.parse((await c.cli(['status', '--json'])).stdout) as HaJson).ha.synchronous;

    it('does not promote a standby that the raised count would let in alone, with commits only the dead one acknowledged', async () => {
      const leader = await agents.settled();
      const [acking, lagging] = NODES.filter((n) => n !== leader) as [string, string];
      assert.deepEqual(await synchronous(), { count: 1, standbys: [acking, lagging].sort(), leader });
      await c.sql(leader, 'CREATE TABLE writes (id bigint PRIMARY KEY)');

      // The lagging standby's WAL receiver stops taking WAL: from here only `acking` acknowledges.
      const [receiver] = await c.sql<{ pid: number }>(lagging, 'SELECT pid FROM pg_stat_wal_receiver');
      assert.ok(receiver, `${lagging} streams`);
      process.kill(receiver.pid, 'SIGSTOP');
      frozen.push(receiver.pid);
      for (let id = 1; id <= 20; id++) await c.sql(leader, 'INSERT INTO writes VALUES ($1)', [id]);
      const [acked] = await c.sql<{ n: string }>(acking, 'SELECT count(*)::text AS n FROM writes');
      assert.equal(acked?.n, '20', `${acking} acknowledged every commit`);

      // ANY 1 → ANY 2. The server takes it at once; etcd may record it only once both standbys
      // flushed past that point, which the frozen one never does.
      setMode = c.cli(['set-mode', 'quorum', '--count', '2', '--force']);
      await agents.waitFor(
        async () =>
          (
            await c.sql<{ s: string }>(leader, "SELECT current_setting('synchronous_standby_names') AS s")
          )[0]?.s.startsWith('ANY 2') === true,
        15_000,
        `${leader} to run ANY 2`,
      );
      assert.deepEqual(
        await synchronous(),
        { count: 1, standbys: [acking, lagging].sort(), leader },
        'etcd still asks a candidate for both standbys',
      );

      // Inside the window: the leader and the only standby holding the commits die.
      for (const n of [acking, leader]) {
        process.kill(agents.agentPid(n), 'SIGKILL');
        process.kill(agents.watchdogPid(n), 'SIGKILL');
        process.kill(-(c.postmasterPid(n) as number), 'SIGKILL');
      }
      await agents.waitFor(
        async () => {
          const s = await agents.status(lagging);
          return s?.leader === null && /only 1 of the 2 synchronous standbys needed/.test(s.reason ?? '');
        },
        15_000,
        `${lagging} to refuse the leader key: the recorded set still asks for ${acking}'s confirmation`,
      );
      const s = await agents.status(lagging);
      assert.equal(s?.server?.kind, 'replica', `${lagging} was not promoted`);
    });
  },
);
