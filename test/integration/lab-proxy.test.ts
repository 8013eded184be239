import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { freePort } from '../../src/ha/free-port.js';

const PROXY = join(dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'lab-proxy.js');

/**
 * The lab's latency proxy holds chunks back; what it must never do is deliver a connection's bytes
 * out of order (TCP does not: a stream reordered is a corrupted one, and every TLS connection of the
 * lab fails with "bad record MAC"). Seen when chunks of different delays came due together, and when
 * the delay was lifted while chunks were still held.
 */
describe('the lab proxy', () => {
  it('keeps a connection’s bytes in order while its delay jitters and is lifted', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pgrepl-proxy-'));
    const echo: Server = createServer((s) => s.pipe(s));
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    const listen = await freePort();
    const control = join(dir, 'control.json');
    const setDelay = (delayMs: number, jitterMs: number) =>
      writeFileSync(control, JSON.stringify({ hosts: ['a'], delayMs, jitterMs }));
    setDelay(5, 40);
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        self: 'a',
        control,
        routes: [{ listen, peer: 'b', host: '127.0.0.1', port: (echo.address() as AddressInfo).port }],
      }),
    );
    const script = join(dir, 'lab-proxy.mjs');
    copyFileSync(PROXY, script);
    const proxy = spawn(process.execPath, [script, config], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => {
      proxy.kill();
      echo.close();
      rmSync(dir, { recursive: true, force: true });
    });
    await once(proxy.stdout, 'data');

    const sock = connect({ host: '127.0.0.1', port: listen });
    await once(sock, 'connect');
    let received = '';
    sock.on('data', (d: Buffer) => (received += d.toString()));
    let sent = '';
    for (let i = 0; i < 400; i++) {
      const chunk = `${i};`;
      sock.write(chunk);
      sent += chunk;
      // Chunks apart, so each gets a delay of its own; the delay lifted and put back meanwhile.
      await new Promise((r) => setTimeout(r, 1));
      if (i % 100 === 50) {
        setDelay(0, 0);
        proxy.kill('SIGHUP');
      } else if (i % 100 === 75) {
        setDelay(5, 40);
        proxy.kill('SIGHUP');
      }
    }
    const deadline = Date.now() + 10_000;
    while (received.length < sent.length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    sock.destroy();
    assert.equal(received, sent);
  });
});
