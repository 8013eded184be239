import pg from 'pg';

/** One write as the client saw it: when it asked, when it heard back, and what it heard. */
export interface WriteOp {
  readonly id: number;
  readonly invokedAt: number;
  readonly completedAt: number;
  /**
   * ok: its COMMIT was acknowledged; failed: it was never applied (no node accepted the connection,
   * or the server refused it as read-only); unknown: anything else (a lost connection, a timeout):
   * it may or may not have committed.
   */
  readonly outcome: 'ok' | 'failed' | 'unknown';
  /** An acknowledged write's WAL position (its row's insert, just before its commit record). */
  readonly lsn?: string;
}

/**
 * A client that inserts numbered rows every `intervalMs` into whichever node accepts writes,
 * like a libpq client with target_session_attrs=read-write: it remembers every id whose COMMIT
 * was acknowledged, and the longest time it could not write.
 */
export class Writer {
  readonly acked: number[] = [];
  /** Every write, in order. */
  readonly history: WriteOp[] = [];
  longestGapMs = 0;
  /** The last write's failure, for a test's message. */
  lastError: string | undefined;
  /** Date.now() of the first acknowledged write. */
  firstAckAt: number | undefined;
  private client: pg.Client | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private next = 1;

  constructor(
    /** With `ssl`, over TLS checked against that CA (a cluster with tls: auto admits nothing else). */
    private readonly nodes: { host: string; port: number; ssl?: { ca: string } }[],
    private readonly password: string,
    private readonly intervalMs = 5,
    /** A COMMIT not acknowledged in this time counts as failed (the id is not reused); none: wait. */
    private readonly queryTimeoutMs?: number,
  ) {}

  /** The id the next write will carry: every id above it is sent after this moment. */
  get nextId(): number {
    return this.next;
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.client?.end().catch(() => undefined);
  }

  private async run(): Promise<void> {
    let lastOk = Date.now();
    while (this.running) {
      const id = this.next;
      const invokedAt = Date.now();
      let sent = false;
      try {
        const c = await this.connect();
        sent = true;
        const r = await c.query<{ lsn: string }>(
          'INSERT INTO writes (id) VALUES ($1) RETURNING pg_current_wal_insert_lsn()::text AS lsn',
          [id],
        );
        const lsn = r.rows[0]?.lsn;
        this.history.push({ id, invokedAt, completedAt: Date.now(), outcome: 'ok', ...(lsn ? { lsn } : {}) });
        this.acked.push(id);
        this.firstAckAt ??= Date.now();
        this.next++;
        this.longestGapMs = Math.max(this.longestGapMs, Date.now() - lastOk);
        lastOk = Date.now();
      } catch (err) {
        this.lastError = (err as Error).message;
        const refused = !sent || (err as { code?: string }).code === '25006';
        this.history.push({
          id,
          invokedAt,
          completedAt: Date.now(),
          outcome: refused ? 'failed' : 'unknown',
        });
        // Not awaited: ending a connection to a server that vanished can wait a long time.
        void this.client?.end().catch(() => undefined);
        this.client = undefined;
        // An unacknowledged id is never reused: it may or may not have committed.
        this.next++;
      }
      await new Promise((r) => setTimeout(r, this.intervalMs));
    }
  }

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    for (const n of this.nodes) {
      const c = new pg.Client({
        ...n,
        user: 'postgres',
        password: this.password,
        database: 'postgres',
        connectionTimeoutMillis: 500,
        ...(this.queryTimeoutMs === undefined ? {} : { query_timeout: this.queryTimeoutMs }),
      });
      c.on('error', () => undefined);
      try {
        await c.connect();
        const [row] = (await c.query('SELECT pg_is_in_recovery() AS ro')).rows as { ro: boolean }[];
        if (row && !row.ro) {
          this.client = c;
          return c;
        }
      } catch {
        // try the next node
      }
      // Not awaited, as libpq's PQfinish does not wait: end() waits for the server's backend to
      // exit, 10–70 ms here, which a client trying the next host does not spend.
      void c.end().catch(() => undefined);
    }
    throw new Error('no node accepts writes');
  }
}
