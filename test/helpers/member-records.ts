import type { MemberRecord } from '../../src/dcs/ha-values.js';

/** A member record as an agent publishes it: a streaming replica of pg1, caught up, unless `o` says otherwise. */
export const memberRecord = (node: string, o: Partial<MemberRecord> = {}): MemberRecord => ({
  node,
  role: 'replica',
  timeline: 1,
  lsn: '0/5000000',
  replayLsn: '0/5000000',
  lagBytes: 0,
  replayLagBytes: 0,
  problem: null,
  upstream: 'pg1',
  streaming: true,
  slotsFor: null,
  syncStandbys: [],
  quorumStandbys: [],
  decision: 'wait',
  reason: '',
  api: '',
  pid: 1,
  at: 0,
  ...o,
});
