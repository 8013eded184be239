import { spawn } from 'node:child_process';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { watchProcess } from '../../src/postgres/process-watch.js';

const waitFor = async (what: () => boolean) => {
  for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 10));
  return what();
};

test('a watched process is alive until it is killed and reaped', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  assert.ok(child.pid);
  const w = watchProcess(child.pid);
  try {
    assert.equal(w.alive(), true);
    assert.equal(w.alive(), true, 'asked again, the same answer');
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.equal(w.alive(), false);
  } finally {
    w.close();
  }
});

test('an unreaped zombie counts as dead', async (t) => {
  // sh starts a sleep in the background and becomes another sleep that never reaps it: once
  // killed, the first sleep stays a zombie for as long as its parent runs.
  const parent = spawn('sh', ['-c', 'sleep 30 & echo $!; exec sleep 30'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  t.after(() => parent.kill('SIGKILL'));
  const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
  const pid = Number(line.toString().trim());
  const w = watchProcess(pid);
  try {
    assert.equal(w.alive(), true);
    process.kill(pid, 'SIGKILL');
    assert.ok(await waitFor(() => !w.alive()), 'the zombie is not alive');
  } finally {
    w.close();
  }
});

test('a process that is gone before the watch begins is dead', async () => {
  const child = spawn('true', { stdio: 'ignore' });
  await once(child, 'exit');
  const w = watchProcess(child.pid!);
  assert.equal(w.alive(), false);
  w.close();
});
