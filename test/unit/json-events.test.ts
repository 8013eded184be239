import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { jsonEvents } from '../../src/cli/json-events.js';

describe('--log-format json', () => {
  it("writes one JSON line per event, in pino's shape: level, ISO time, pid, the fields, msg", () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgrepl-json-'));
    const file = join(dir, 'log');
    const fd = openSync(file, 'w');
    try {
      const sink = jsonEvents(fd);
      sink.emit({ event: 'note', message: 'first "quoted"\nline' });
      sink.emit({ event: 'agent-error', node: 'pg1', during: 'reading etcd', error: 'refused' });
      sink.close();
      const lines = readFileSync(file, 'utf8').split('\n');
      assert.equal(lines.length, 3, 'two lines, each ended');
      const [a, b] = lines.slice(0, 2).map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(Object.keys(a ?? {}), ['level', 'time', 'pid', 'event', 'message', 'msg']);
      assert.equal(a?.['level'], 30);
      assert.equal(a?.['pid'], process.pid);
      assert.ok(!Number.isNaN(Date.parse(String(a?.['time']))) && String(a?.['time']).endsWith('Z'));
      assert.equal(a?.['message'], 'first "quoted"\nline');
      assert.equal(b?.['node'], 'pg1');
      assert.match(String(b?.['msg']), /reading etcd/);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
