/**
 * The lab's network delay, run in each host's namespace (the kernel here has no netem): nftables
 * sends every TCP connection the host opens to another host (PostgreSQL, the agents' API, etcd's
 * client and peer ports) to a port of this process on 127.0.0.1, which forwards it to where it was
 * going. It runs from the lab's start, so long-lived connections (streaming replication, etcd's
 * peer streams, the agents' kept sessions) pass through it too; a fault then only changes the delay.
 *
 * `node lab-proxy.mjs CONFIG`: CONFIG names the routes and the control file. SIGHUP reads the
 * control file again: `{ hosts, delayMs, jitterMs }` delays each chunk, each way, of every
 * connection of which one end is on one of `hosts` by delayMs plus up to jitterMs at random. A
 * connection's bytes keep their order (it is TCP); chunks of different connections overtake each
 * other, so messages arrive reordered across connections (a replication stream vs. etcd).
 *
 * It must run as a user whose connections nftables lets pass (it is excluded by its uid), and
 * it imports nothing but Node's own modules: the lab copies it where that user can read it.
 */
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';

export interface ProxyRoute {
  /** The port on 127.0.0.1 that nftables redirects this route to. */
  readonly listen: number;
  /** The peer host's name, address and port the connection was opened to. */
  readonly peer: string;
  readonly host: string;
  readonly port: number;
}

export interface ProxyConfig {
  /** The host this proxy runs on. */
  readonly self: string;
  readonly routes: readonly ProxyRoute[];
  readonly control: string;
}

export interface ProxyDelay {
  readonly hosts: readonly string[];
  readonly delayMs: number;
  readonly jitterMs: number;
}

export const NO_DELAY: ProxyDelay = { hosts: [], delayMs: 0, jitterMs: 0 };

function main(configFile: string): void {
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as ProxyConfig;
  let delay = NO_DELAY;
  const reload = () => {
    try {
      delay = JSON.parse(readFileSync(config.control, 'utf8')) as ProxyDelay;
    } catch {
      delay = NO_DELAY;
    }
  };
  reload();
  process.on('SIGHUP', reload);
  const delayFor = (peer: string): number =>
    delay.hosts.includes(config.self) || delay.hosts.includes(peer)
      ? delay.delayMs + Math.random() * delay.jitterMs
      : 0;

  /**
   * Copies `from` to `to`, each chunk after its delay, in order; ends `to` after the last one. One
   * queue per direction, drained by one timer: chunks given separate timers could overtake each
   * other (Node orders timers of different lengths that come due together as it likes), which is
   * not latency but a corrupted stream (TLS then fails with "bad record MAC").
   */
  const pipeDelayed = (from: Socket, to: Socket, peer: string) => {
    const queue: { at: number; send: () => void }[] = [];
    let timer: NodeJS.Timeout | null = null;
    const drain = () => {
      timer = null;
      while (queue.length > 0 && (queue[0] as (typeof queue)[number]).at <= Date.now())
        (queue.shift() as (typeof queue)[number]).send();
      const next = queue[0];
      if (next) timer = setTimeout(drain, Math.max(0, next.at - Date.now()));
    };
    const later = (ms: number, send: () => void) => {
      // Never before the chunk ahead of it, whatever its own delay.
      const at = Math.max(queue[queue.length - 1]?.at ?? 0, Date.now() + ms);
      queue.push({ at, send });
      if (timer === null) drain();
    };
    from.on('data', (chunk: Buffer) => later(delayFor(peer), () => to.destroyed || to.write(chunk)));
    from.on('end', () => later(0, () => to.end()));
  };

  let listening = 0;
  for (const r of config.routes) {
    const server = createServer({ allowHalfOpen: true }, (inbound) => {
      const outbound = connect({ host: r.host, port: r.port, allowHalfOpen: true });
      const close = () => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', close).on('close', close);
      outbound.on('error', close).on('close', close);
      pipeDelayed(inbound, outbound, r.peer);
      pipeDelayed(outbound, inbound, r.peer);
    });
    server.listen(r.listen, '127.0.0.1', () => {
      if (++listening === config.routes.length) process.stdout.write('ready\n');
    });
  }
}

const file = process.argv[2];
if (file !== undefined && process.argv[1]?.endsWith('lab-proxy.mjs')) main(file);
