/**
 * The lab's client, run in a namespace of its own (the hosts' subnet exists only there): a writer
 * that inserts numbered rows into whichever node accepts writes, recording every write's invocation
 * and outcome, and probes that write to every node directly every 100 ms. It makes its tables on
 * the primary first and prints `ready`; on SIGTERM it stops, reads which ids the primary holds
 * then, and writes everything as JSON to the file it was given (checkHistory judges it).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { Writer } from './writer.js';
import { WriteProbe } from './write-probe.js';

interface Config {
  readonly nodes: { name: string; host: string; port: number }[];
  readonly caFile: string;
  readonly passwordFile: string;
  readonly out: string;
}

const [configFile] = process.argv.slice(2);
// `node --test dist/test/` also runs this file, with no arguments: then it has nothing to do.
if (configFile === undefined) process.exit(0);
const config = JSON.parse(readFileSync(configFile, 'utf8')) as Config;
const password = readFileSync(config.passwordFile, 'utf8').trim();
const ssl = { ca: readFileSync(config.caFile, 'utf8') };
const nodes = config.nodes.map((n) => ({ ...n, ssl }));

/** Runs `fn` on the node that accepts writes now, retrying for up to `ms`. */
async function onPrimary<T>(fn: (c: pg.Client) => Promise<T>, ms: number): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    for (const n of nodes) {
      const c = new pg.Client({
        ...n,
        user: 'postgres',
        password,
        database: 'postgres',
        connectionTimeoutMillis: 1000,
      });
      c.on('error', () => undefined);
      try {
        await c.connect();
        const [row] = (await c.query('SELECT pg_is_in_recovery() AS ro')).rows as { ro: boolean }[];
        if (row && !row.ro) return await fn(c);
      } catch {
        // the next node
      } finally {
        await c.end().catch(() => undefined);
      }
    }
    if (Date.now() > until) throw new Error('no node accepts writes');
    await new Promise((r) => setTimeout(r, 200));
  }
}

await onPrimary(
  (c) =>
    c.query(
      'CREATE TABLE IF NOT EXISTS writes (id bigint PRIMARY KEY); CREATE TABLE IF NOT EXISTS probe (node text, at timestamptz DEFAULT now()); TRUNCATE writes',
    ),
  30_000,
);
const writer = new Writer(nodes, password, 20, 2000);
const probe = new WriteProbe(nodes, password);
writer.start();
probe.start();
process.stdout.write('ready\n');
await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
await writer.stop();
await probe.stop();
const committed = await onPrimary(
  async (c) => ((await c.query('SELECT id FROM writes')).rows as { id: string }[]).map((r) => Number(r.id)),
  60_000,
);
writeFileSync(config.out, JSON.stringify({ writes: writer.history, probes: probe.acks, committed }));
process.exit(0);
