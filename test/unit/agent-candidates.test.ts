import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { candidatesIn } from '../../src/operator/agent-failover.js';
import type { HaState, MemberRecord } from '../../src/dcs/ha-values.js';
import { memberRecord } from '../helpers/member-records.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { resolveHa } from '../../src/cluster-spec/resolve-ha.js';

const spec = parseSpec(
  'cluster: t\nstateDir: /s\nnodes:\n  - { name: pg1, port: 5001, dataDir: /d/pg1 }\n' +
    '  - { name: pg2, port: 5002, dataDir: /d/pg2 }\n  - { name: pg3, port: 5003, dataDir: /d/pg3, noFailover: true }\n',
  'test.yaml',
  '/',
);
const ha = resolveHa({
  profile: 'default',
  maximumLagOnFailover: 1048576,
  apiPortOffset: 1000,
  failsafe: true,
});

const replica = (node: string, lagBytes: number): MemberRecord =>
  memberRecord(node, { lagBytes, replayLagBytes: lagBytes });

const state = (members: MemberRecord[]) =>
  ({ members: new Map(members.map((m) => [m.node, m])) }) as unknown as HaState;

describe("the agents' switchover and promote judge candidates as the agents' failover does (issue 31)", () => {
  it('holds a replica past maximumLagOnFailover, and one marked never to be promoted, out', () => {
    const far = candidatesIn(spec, state([replica('pg2', 20 * 1048576), replica('pg3', 0)]), ha, 'pg1');
    assert.match(
      far.find((c) => c.name === 'pg2')?.problem ?? '',
      /20971520 bytes behind the primary, more than maximumLagOnFailover 1048576/,
    );
    assert.match(far.find((c) => c.name === 'pg3')?.problem ?? '', /marked never to be promoted/);
    const near = candidatesIn(spec, state([replica('pg2', 1000), replica('pg3', 0)]), ha, 'pg1');
    assert.equal(near.find((c) => c.name === 'pg2')?.problem, null);
  });
});
