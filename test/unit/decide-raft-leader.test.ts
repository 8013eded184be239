import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideRaftLeaderMove } from '../../src/cluster/decide/decide-raft-leader.js';

const member = (id: string, name: string, host: string) => ({
  id,
  name,
  clientUrls: [`https://${host}:2379`],
});
const members = [
  member('11', 'db1', '10.0.0.11'),
  member('12', 'db2', '10.0.0.12'),
  member('13', 'db3', '10.0.0.13'),
];

describe("where etcd's raft leader may be (decideRaftLeaderMove)", () => {
  it('hands it away from the PostgreSQL leader’s host, to the first member elsewhere by name', () => {
    const d = decideRaftLeaderMove({ members, leaderId: '12', host: '10.0.0.12' });
    assert.equal(d.kind, 'move');
    assert.deepEqual(d.kind === 'move' && [d.leaderUrl, d.targetId], ['https://10.0.0.12:2379', '11']);
    assert.match(d.reason, /db2 runs on 10\.0\.0\.12, the PostgreSQL leader's host: handing it to db1/);
  });

  it('leaves it where it is when it runs on another host', () => {
    const d = decideRaftLeaderMove({ members, leaderId: '13', host: '10.0.0.11' });
    assert.deepEqual(d, { kind: 'stay', reason: "etcd's raft leader db3 is not on 10.0.0.11" });
  });

  it('leaves a single member, an etcd of its own hosts, and an unknown leader alone', () => {
    const local = [member('1', 'pgrepl', '127.0.0.1')];
    assert.equal(decideRaftLeaderMove({ members: local, leaderId: '1', host: '127.0.0.1' }).kind, 'stay');
    const own = [
      member('21', 'e1', '10.9.0.1'),
      member('22', 'e2', '10.9.0.2'),
      member('23', 'e3', '10.9.0.3'),
    ];
    assert.equal(decideRaftLeaderMove({ members: own, leaderId: '21', host: '10.0.0.11' }).kind, 'stay');
    assert.equal(decideRaftLeaderMove({ members, leaderId: '0', host: '10.0.0.11' }).kind, 'stay');
  });

  it('matches hosts whatever their case, and IPv6 addresses without their brackets', () => {
    const v6 = [member('1', 'a', '[fd00::1]'), member('2', 'b', '[fd00::2]'), member('3', 'c', '[fd00::3]')];
    assert.equal(decideRaftLeaderMove({ members: v6, leaderId: '1', host: 'fd00::1' }).kind, 'move');
    const named = [member('1', 'a', 'db1.example'), member('2', 'b', 'db2.example')];
    assert.equal(decideRaftLeaderMove({ members: named, leaderId: '1', host: 'DB1.example' }).kind, 'move');
  });
});
