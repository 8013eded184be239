import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dashboardSamples, viewSamples } from '../../src/agent/dashboard/dashboard-samples.js';
import { initialAgentState } from '../../src/agent/agent-state.js';
import type { AgentState } from '../../src/agent/agent-state.js';

const primary = (lsn: string, commits: number, timeline = 3): AgentState =>
  ({
    ...initialAgentState('n1'),
    self: {
      local: { kind: 'primary', timeline, lsn },
      instance: { commits },
      slots: [{ name: 'n2', retainedBytes: 4096 }],
    },
  }) as unknown as AgentState;

describe('the samples an agent charts', () => {
  it("gives a replica's replay lag in bytes (behind the leader's last position) and seconds", () => {
    const s = {
      ...initialAgentState('n2'),
      self: { local: { kind: 'replica' }, instance: { replayLagSeconds: 12.5 } },
      record: { replayLagBytes: 48 * 1024 * 1024 },
    } as unknown as AgentState;
    assert.deepEqual(dashboardSamples(null, s, 0).values, [
      ['lag_bytes/n2', 48 * 1024 * 1024],
      ['lag_seconds/n2', 12.5],
    ]);
  });

  it("counts the primary's WAL and commit rates per second from the sample before", () => {
    const first = dashboardSamples(null, primary('0/1000000', 100), 10_000);
    assert.deepEqual(first.values, [
      ['wal_rate', null],
      ['commit_rate', null],
      ['slot_retained/n2', 4096],
    ]);
    const second = dashboardSamples(first.base, primary('0/1080000', 150), 12_000);
    assert.deepEqual(second.values.slice(0, 2), [
      ['wal_rate', 0x80000 / 2],
      ['commit_rate', 25],
    ]);
  });

  it('counts no rate across a new timeline or a statistics reset (a gap, not a spike)', () => {
    const before = dashboardSamples(null, primary('0/9000000', 500, 3), 0).base;
    const promoted = dashboardSamples(before, primary('0/1000000', 10, 4), 1000);
    assert.deepEqual(promoted.values.slice(0, 2), [
      ['wal_rate', null],
      ['commit_rate', null],
    ]);
    const reset = dashboardSamples(promoted.base, primary('0/1000100', 0, 4), 2000);
    assert.deepEqual(reset.values[1], ['commit_rate', null]);
  });

  it('gives nothing for a stopped node', () => {
    const s = { ...initialAgentState('n3'), self: { local: { kind: 'stopped' } } } as unknown as AgentState;
    assert.deepEqual(dashboardSamples(null, s, 0), { values: [], base: null });
  });
});

describe("the samples `pgrepl dashboard` charts from status's observation", () => {
  const node = (name: string, role: string, lsn: string | null, more: object = {}) => ({
    name,
    role,
    timeline: 2,
    lsn,
    lagBytes: null,
    replayLagMs: null,
    slot: null,
    ...more,
  });

  it("gives each replica's lag as its primary sees it, the slots, and the WAL rate", () => {
    const nodes = (lsn: string) => [
      node('n1', 'primary', lsn),
      node('n2', 'replica', '0/100', {
        lagBytes: 2048,
        replayLagMs: 1500,
        slot: { name: 'n2', retainedBytes: 4096 },
      }),
    ];
    const first = viewSamples(null, nodes('0/1000000'), 0);
    const second = viewSamples(first.base, nodes('0/1100000'), 4000);
    assert.deepEqual(second.values, [
      ['lag_bytes/n2', 2048],
      ['lag_seconds/n2', 1.5],
      ['slot_retained/n2', 4096],
      ['wal_rate', 0x100000 / 4],
    ]);
  });
});
