import pg from 'pg';

/** One write a node acknowledged: when it was sent and when its COMMIT came back. */
export interface ProbeAck {
  readonly node: string;
  readonly sentAt: number;
  readonly ackAt: number;
}

/**
 * Writes to every node directly every `intervalMs` and records which ones acknowledge: the evidence
 * for "never two writable primaries". A write that is not acknowledged within a second counts as
 * refused (a sync-mode primary without its standby holds the COMMIT; a replica refuses it).
 */
export class WriteProbe {
  readonly acks: ProbeAck[] = [];
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly nodes: readonly { name: string; host: string; port: number; ssl?: { ca: string } }[],
    private readonly password: string,
    private readonly intervalMs = 100,
  ) {}

  start(): void {
    this.running = true;
    this.loops = this.nodes.map((n) => this.loop(n));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** The nodes that acknowledged writes, in runs, in the order their acknowledgements came. */
  runs(): { node: string; from: number; to: number; writes: number }[] {
    const out: { node: string; from: number; to: number; writes: number }[] = [];
    for (const a of [...this.acks].sort((x, y) => x.ackAt - y.ackAt)) {
      const last = out[out.length - 1];
      if (last && last.node === a.node) {
        last.to = a.ackAt;
        last.writes++;
      } else out.push({ node: a.node, from: a.sentAt, to: a.ackAt, writes: 1 });
    }
    return out;
  }

  private async loop(n: { name: string; host: string; port: number; ssl?: { ca: string } }): Promise<void> {
    let client: pg.Client | undefined;
    while (this.running) {
      const sentAt = Date.now();
      try {
        if (!client) {
          client = new pg.Client({
            host: n.host,
            port: n.port,
            user: 'postgres',
            password: this.password,
            database: 'postgres',
            connectionTimeoutMillis: 500,
            query_timeout: 1000,
            ...(n.ssl ? { ssl: n.ssl } : {}),
          });
          client.on('error', () => undefined);
          await client.connect();
        }
        await client.query('INSERT INTO probe (node) VALUES ($1)', [n.name]);
        this.acks.push({ node: n.name, sentAt, ackAt: Date.now() });
      } catch (err) {
        // A replica's refusal keeps the connection; anything else gets a new one.
        if (!/read-only transaction/.test(String((err as Error).message))) {
          const old = client;
          client = undefined;
          void old?.end().catch(() => undefined);
        }
      }
      await new Promise((r) => setTimeout(r, Math.max(0, this.intervalMs - (Date.now() - sentAt))));
    }
    void client?.end().catch(() => undefined);
  }
}
