import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ignoreEvents } from '../../src/cluster/context/events.js';
import type { ClusterStore } from '../../src/cluster/store/cluster-store.js';
import { assertNoInterruptedOperation, Journal } from '../../src/cluster/operations/journal.js';
import type { JournalEntry } from '../../src/cluster/store/cluster-store.js';

/** A ClusterStore in memory, as etcd's will be to the journal: nothing but the interface. */
function memoryStore(): ClusterStore & { writes: JournalEntry[]; journal: JournalEntry | null } {
  const store = {
    writes: [] as JournalEntry[],
    journal: null as JournalEntry | null,
    withLock: <T>(_command: string, fn: () => Promise<T>) => fn(),
    readJournal: async () => store.journal,
    writeJournal: async (e: JournalEntry) => {
      store.journal = e;
      store.writes.push(e);
    },
    clearJournal: async () => {
      store.journal = null;
    },
    fencedNodes: async () => [],
    setFenced: async () => undefined,
    appendHistory: async () => undefined,
    readHistory: async () => [],
  };
  return store;
}

const init = { op: 'switchover' as const, resume: ['switchover', '--to', 'pg2'], facts: { target: 'pg2' } };

describe('Journal on a ClusterStore', () => {
  it('writes each step to the store before it runs and after it is done, and clears it at the end', async () => {
    const store = memoryStore();
    const j = await Journal.begin(store, init, { startedAt: '2026-12-01T00:00:00.000Z' });
    const seen: (string | undefined)[] = [];
    await j.step('stop pg1', async () => seen.push(store.journal?.step));
    assert.deepEqual(seen, ['stop pg1'], 'the store names the step while it runs');
    assert.deepEqual(store.journal?.done, ['stop pg1']);
    await assert.rejects(
      assertNoInterruptedOperation(store),
      /E_INTERRUPTED_OPERATION|interrupted during step/,
    );
    await j.finish();
    assert.equal(store.journal, null);
    await assertNoInterruptedOperation(store);
  });

  it('resumed, skips the steps an interrupted run finished and runs the one it was killed in', async () => {
    const store = memoryStore();
    const first = await Journal.begin(store, init, { startedAt: '2026-12-01T00:00:00.000Z' });
    await first.step('stop pg1', async () => undefined);
    await assert.rejects(
      first.step('promote pg2', async () => {
        throw new Error('killed');
      }),
    );
    const left = await store.readJournal();
    assert.ok(left);
    const again = Journal.resume(store, left, { interrupt: undefined, events: ignoreEvents });
    const ran: string[] = [];
    await again.step('stop pg1', async () => ran.push('stop pg1'));
    await again.step('promote pg2', async () => ran.push('promote pg2'));
    assert.deepEqual(ran, ['promote pg2']);
    assert.equal(again.current, 'promote pg2');
  });
});
