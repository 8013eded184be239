import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { askAgents } from './agent-status.js';
import { ClusterPoolError } from './client-errors.js';
import { failureKind } from './failure-kind.js';
import type { FailureKind } from './failure-kind.js';
import { laterToken, tokenPosition } from './read-token.js';
import type { ReadToken } from './read-token.js';
import { choosePrimary } from './choose-primary.js';
import { nodeConfigs } from './pool-config.js';
import { probeNode, readPosition } from './probe-node.js';
import type { Probe } from './probe-node.js';
import { ReadPool } from './read-pool.js';
import { PrimaryHistory } from './replica-lag.js';
import { lsnText, routeRequest } from './route-request.js';
import type { NodeView, ReadNeeds, Route, RouteRequest } from './route-request.js';

export interface ClusterPoolOptions extends Omit<pg.PoolConfig, 'host' | 'port' | 'connectionString'> {
  /** A multi-host libpq URI, as `pgrepl url` prints it; its user, password, database and TLS apply. */
  readonly url?: string;
  /** The nodes, as "host:port" or { host, port }; with `url`, these are ignored. */
  readonly hosts?: readonly (string | { readonly host: string; readonly port: number })[];
  /**
   * The HA agents' API URLs (http://host:6432): they say where the nodes are and who leads, and a
   * node they do not name as the leader gets no writes even while it still answers as a primary.
   * Without `url` or `hosts`, the nodes are the ones the agents name.
   */
  readonly agents?: readonly string[];
  /** The CA (PEM) that the agents' https certificates are checked against. */
  readonly agentCa?: string;
  /** Reads go to replicas at most this far behind (ms on this process's clock; default 5000). */
  readonly maxLagMs?: number;
  /** Reads go to replicas at most this many bytes behind (default 16 MiB). */
  readonly maxLagBytes?: number;
  /** A read after a token waits this long for a replica to replay it, then goes to the primary (default 1000). */
  readonly maxWaitMs?: number;
  /** While no primary is known, writes wait this long for one (a failover), then fail (default 30000). */
  readonly failoverTimeoutMs?: number;
  /** How often roles and lag are read again (default 1000 ms; every 20 ms while a request waits for a primary). */
  readonly refreshMs?: number;
  /** Each routing decision with its reason, for a debug log. */
  readonly onRoute?: (e: RouteEvent) => void;
}

export interface RouteEvent {
  readonly kind: 'write' | 'read' | 'connect';
  readonly node: string | null;
  readonly reason: string;
}

export interface ReadOptions {
  readonly after?: ReadToken | null;
  readonly maxLagMs?: number;
  readonly maxLagBytes?: number;
  readonly allowStale?: boolean;
}

/** A write's result, with the token of its COMMIT (null when the connection was lost right after it). */
export type WriteResult<R extends pg.QueryResultRow = pg.QueryResultRow> = pg.QueryResult<R> & {
  readonly token: ReadToken | null;
};

export interface Topology {
  readonly primary: string | null;
  /** Why that node is the primary, or why none is (the last refresh's choosePrimary). */
  readonly primaryReason: string;
  readonly nodes: readonly {
    readonly name: string;
    readonly role: NodeView['role'];
    readonly replayLsn: string | null;
    readonly lagBytes: number | null;
    readonly lagMs: number | null;
    readonly outstanding: number;
  }[];
}

/** What the pool did since it started: routes taken, waits for a primary, retries, unknown outcomes. */
export interface ClusterPoolStats {
  toPrimary: number;
  toReplica: number;
  /** Reads after a token that waited on a replica's replay. */
  replayWaits: number;
  /** Of those, the ones that went to the primary after maxWaitMs. */
  replayFallbacks: number;
  /** Requests that waited for a primary (a failover or a switchover under way). */
  primaryWaits: number;
  retries: number;
  outcomeUnknown: number;
}

interface NodeState {
  readonly name: string;
  readonly pool: pg.Pool;
  role: NodeView['role'];
  replayLsn: bigint | null;
  lagBytes: number | null;
  lagMs: number | null;
  outstanding: number;
  probing: boolean;
}

const DEFAULTS = {
  maxLagMs: 5000,
  maxLagBytes: 16 * 1024 * 1024,
  maxWaitMs: 1000,
  failoverTimeoutMs: 30_000,
  refreshMs: 1000,
};

/** How often a read after a token asks its replica again how far it replayed. */
const REPLAY_POLL_MS = 10;
/**
 * How often roles are read again while a request waits for a primary (a switchover's or a
 * failover's promotion): each wait adds up to this to the application's write gap.
 */
const PRIMARY_POLL_MS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * What a transaction's function threw, before any COMMIT was sent: nothing of it committed, so it is
 * no unknown outcome. `connectionOk`: the ROLLBACK after it went through, so the error was the
 * caller's (or its SQL's), not the node's.
 */
class BeforeCommit {
  constructor(
    readonly error: unknown,
    readonly connectionOk: boolean,
  ) {}
}
const now = () => performance.now();

/**
 * A pool over every node of a cluster that sends writes to the primary and reads to replicas
 * within the lag bounds, follows the primary through failovers, and gives each write a token that
 * a later read can wait for (read-your-writes). Its `query` and `connect` make it a drop-in for
 * `pg.Pool` where kysely and drizzle take one: what they run goes to the primary; `reader()`
 * gives a pool that sends theirs to replicas.
 */
export class ClusterPool extends EventEmitter {
  readonly stats: ClusterPoolStats = {
    toPrimary: 0,
    toReplica: 0,
    replayWaits: 0,
    replayFallbacks: 0,
    primaryWaits: 0,
    retries: 0,
    outcomeUnknown: 0,
  };
  private readonly nodes: NodeState[] = [];
  /** Each node's pg.Pool settings but its host and port. */
  private readonly base: pg.PoolConfig;
  private readonly agents: { readonly urls: readonly string[]; readonly ca: string | undefined } | null;
  private readonly history = new PrimaryHistory();
  private readonly sessions = new AsyncLocalStorage<{ token: ReadToken | null }>();
  /** The error listener of each connection that is out (connectTo). */
  private readonly listening = new WeakMap<pg.PoolClient, () => void>();
  /** Connections that were seen to have replayed a position, and how far (a replica only moves forward). */
  private readonly replayedOn = new WeakMap<pg.PoolClient, bigint>();
  private readonly settings: typeof DEFAULTS & { onRoute?: (e: RouteEvent) => void };
  private readonly timer: NodeJS.Timeout;
  private refreshing: Promise<void> | null = null;
  private primaryReason = 'not looked at yet';
  private turn = 0;
  private ended = false;
  /** Resolves once the first refresh has ended. */
  readonly ready: Promise<void>;
  private looked = false;

  constructor(options: ClusterPoolOptions) {
    super();
    const {
      url,
      hosts,
      agents,
      agentCa,
      maxLagMs,
      maxLagBytes,
      maxWaitMs,
      failoverTimeoutMs,
      refreshMs,
      onRoute,
      ...poolConfig
    } = options;
    this.settings = {
      maxLagMs: maxLagMs ?? DEFAULTS.maxLagMs,
      maxLagBytes: maxLagBytes ?? DEFAULTS.maxLagBytes,
      maxWaitMs: maxWaitMs ?? DEFAULTS.maxWaitMs,
      failoverTimeoutMs: failoverTimeoutMs ?? DEFAULTS.failoverTimeoutMs,
      refreshMs: refreshMs ?? DEFAULTS.refreshMs,
      ...(onRoute ? { onRoute } : {}),
    };
    this.agents = agents && agents.length > 0 ? { urls: agents, ca: agentCa } : null;
    const given = nodeConfigs(url, hosts, poolConfig, this.agents !== null);
    this.base = given.base;
    for (const h of given.hosts) this.addNode(h.host, h.port);
    this.ready = this.refresh().then(() => {
      this.looked = true;
    });
    this.timer = setInterval(() => void this.refresh(), this.settings.refreshMs);
    this.timer.unref();
  }

  /** Runs a statement on the primary (a drop-in for pg.Pool's query). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string | pg.QueryConfig,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.run({ kind: 'write' }, 'write', (c) => c.query<R>(text as string, values));
  }

  /** Runs a write on the primary; its result carries the token of its COMMIT. */
  async write<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string | pg.QueryConfig,
    values?: unknown[],
  ): Promise<WriteResult<R>> {
    return this.run({ kind: 'write' }, 'write', async (c) => {
      const result = await c.query<R>(text as string, values);
      return { ...result, token: await this.tokenAfter(c) } as WriteResult<R>;
    });
  }

  /**
   * Runs a read on a replica within the lag bounds (with `after`: one that replayed that token),
   * else on the primary. Inside `session()`, the session's latest write token is `after` unless given.
   */
  read<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string | pg.QueryConfig,
    values?: unknown[],
    o: ReadOptions = {},
  ): Promise<pg.QueryResult<R>> {
    return this.run(this.readRequest(o), 'read', (c) => c.query<R>(text as string, values));
  }

  /**
   * Runs `fn` in one transaction on one connection to the primary: COMMIT when it returns,
   * ROLLBACK when it throws (what it threw reaches the caller as it was). A COMMIT whose outcome
   * the connection did not report fails with E_OUTCOME_UNKNOWN. Retried (once) only when it failed
   * before `fn` was called.
   */
  async transaction<T>(
    fn: (client: pg.PoolClient) => Promise<T>,
  ): Promise<{ value: T; token: ReadToken | null }> {
    let called = false;
    return this.run(
      { kind: 'write' },
      'write',
      async (c) => {
        await c.query('BEGIN');
        called = true;
        let value: T;
        try {
          value = await fn(c);
        } catch (err) {
          const rolledBack = await c.query('ROLLBACK').then(
            () => true,
            () => false,
          );
          throw new BeforeCommit(err, rolledBack);
        }
        await c.query('COMMIT');
        return { value, token: await this.tokenAfter(c) };
      },
      // Once fn ran, only the caller knows whether running it again is safe.
      () => !called,
    );
  }

  /** A connection to the primary, as pg.Pool's connect gives one (kysely and drizzle use it). */
  connect(): Promise<pg.PoolClient> {
    return this.checkout({ kind: 'write' }, 'connect');
  }

  /**
   * This pool, typed as a pg.Pool for libraries whose types ask for one (drizzle): they may call
   * query, connect and end, which it has; a pg.Pool's other members it has not.
   */
  asPgPool(): pg.Pool {
    return this as unknown as pg.Pool;
  }

  /**
   * A pool for reads, with the same options as read(): its `connect` and `query` go where read()
   * would send them. Give it to kysely or drizzle for the queries that may read from replicas.
   */
  reader(o: ReadOptions = {}): ReadPool {
    return new ReadPool(this, o);
  }

  /**
   * Runs `fn` with a session of its own (AsyncLocalStorage): every write and transaction in it
   * keeps its token, and every read in it waits for the latest one. `token` starts the session
   * from one kept elsewhere (a cookie).
   */
  session<T>(fn: () => Promise<T>, token: ReadToken | null = null): Promise<T> {
    if (token !== null) tokenPosition(token);
    return this.sessions.run({ token }, fn);
  }

  /** The current session's latest token (to keep in a cookie), null outside a session or before a write. */
  sessionToken(): ReadToken | null {
    return this.sessions.getStore()?.token ?? null;
  }

  /** What the pool knows of the cluster now. */
  topology(): Topology {
    return {
      primary: this.nodes.find((n) => n.role === 'primary')?.name ?? null,
      primaryReason: this.primaryReason,
      nodes: this.nodes.map((n) => ({
        name: n.name,
        role: n.role,
        replayLsn: n.replayLsn === null ? null : lsnText(n.replayLsn),
        lagBytes: n.lagBytes,
        lagMs: n.lagMs,
        outstanding: n.outstanding,
      })),
    };
  }

  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.timer);
    await Promise.all(this.nodes.map((n) => n.pool.end()));
  }

  /** @internal A read request with the pool's defaults and the session's token. */
  readRequest(o: ReadOptions): RouteRequest {
    const after = o.after === undefined ? this.sessionToken() : o.after;
    const needs: ReadNeeds = {
      maxLagMs: o.maxLagMs ?? this.settings.maxLagMs,
      maxLagBytes: o.maxLagBytes ?? this.settings.maxLagBytes,
      allowStale: o.allowStale ?? false,
      after: after === null ? null : tokenPosition(after),
    };
    return { kind: 'read', ...needs };
  }

  /** @internal A connection where `req` is routed, released by the caller (`release`). */
  async checkout(req: RouteRequest, kind: RouteEvent['kind']): Promise<pg.PoolClient> {
    const { node, client } = await this.acquire(req, kind).catch(async (err: unknown) => {
      // No connection was had: nothing was sent, and trying once more after a refresh is safe.
      if (err instanceof ClusterPoolError) throw err;
      this.stats.retries++;
      await this.refresh();
      return this.acquire(req, kind);
    });
    return this.watched(node, client);
  }

  /**
   * @internal Runs `fn` where `req` is routed. A failure that cannot have applied anything (the
   * node refused it as read-only, or the connection failed before it was sent) is retried once
   * after the topology is read again, while `retryable` says so; a read is also retried after a
   * lost connection; a write whose outcome is unknown fails with E_OUTCOME_UNKNOWN.
   */
  async run<T>(
    req: RouteRequest,
    kind: RouteEvent['kind'],
    fn: (c: pg.PoolClient) => Promise<T>,
    retryable: () => boolean = () => true,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let sent = false;
      let node: NodeState | null = null;
      let client: pg.PoolClient | null = null;
      try {
        ({ node, client } = await this.acquire(req, kind));
        sent = true;
        const value = await fn(client);
        this.release(node, client);
        if (kind === 'write') this.keepToken(value);
        return value;
      } catch (err) {
        if (err instanceof BeforeCommit) {
          if (node && client) this.release(node, client, !err.connectionOk);
          if (node && !err.connectionOk) this.suspect(node.name);
          throw err.error;
        }
        const failure: FailureKind = err instanceof ClusterPoolError ? 'sql' : failureKind(err, sent);
        if (node && client) this.release(node, client, failure !== 'sql');
        if (failure === 'sql') throw err;
        if (node) this.suspect(node.name, failure === 'not-primary' ? 'replica' : 'unknown');
        const safe = failure !== 'outcome-unknown' || req.kind === 'read';
        if (!safe) {
          this.stats.outcomeUnknown++;
          throw new ClusterPoolError(
            'E_OUTCOME_UNKNOWN',
            `the connection to ${node?.name ?? 'the primary'} was lost after the write was sent: it may or may not have committed; check before doing it again`,
            { cause: err },
          );
        }
        if (attempt >= 1 || !retryable()) throw err;
        this.stats.retries++;
        await this.refresh();
      }
    }
  }

  /** Routes `req` and takes a connection there, waiting for a primary while none is known. */
  private async acquire(
    req: RouteRequest,
    kind: RouteEvent['kind'],
  ): Promise<{ node: NodeState; client: pg.PoolClient }> {
    if (this.ended) throw new ClusterPoolError('E_POOL_ENDED', 'the pool was ended');
    if (!this.looked) await this.ready;
    // Most requests find their node at once: no promise for them (a tenth of a one-node query).
    const route = this.route(req, kind) ?? (await this.routeOrWait(req, kind));
    const node = this.node(route.node);
    const client = await this.connectTo(node);
    let replayed = true;
    if (route.replayed !== null)
      try {
        replayed = await this.waitReplayed(client, route.replayed);
      } catch (err) {
        this.release(node, client, true);
        this.suspect(node.name);
        throw err;
      }
    if (replayed) {
      this.count(node);
      return { node, client };
    }
    // The replica did not replay the token in maxWaitMs: the primary has it.
    this.release(node, client);
    this.stats.replayFallbacks++;
    const toPrimary = { kind: 'write' } as const;
    const primary = this.node(
      (this.route(toPrimary, kind) ?? (await this.routeOrWait(toPrimary, kind))).node,
    );
    const c = await this.connectTo(primary);
    this.count(primary);
    return { node: primary, client: c };
  }

  private addNode(host: string, port: number): void {
    const name = `${host}:${port}`;
    if (this.nodes.some((n) => n.name === name)) return;
    const pool = new pg.Pool({ connectionTimeoutMillis: 2000, ...this.base, host, port });
    // An idle connection that dies (its server went away) must not crash the application.
    pool.on('error', () => this.suspect(name));
    this.nodes.push({
      name,
      pool,
      role: 'unknown',
      replayLsn: null,
      lagBytes: null,
      lagMs: null,
      outstanding: 0,
      probing: false,
    });
  }

  private node(name: string): NodeState {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name} in the pool`);
    return n;
  }

  /**
   * A connection to `node`, counted as outstanding; a node that refuses one leaves the routing. While
   * it is out, an error between its queries (the server ended it: a shutdown, a switchover) takes
   * the node out of the routing instead of going unheard, which would end the process.
   */
  private async connectTo(node: NodeState): Promise<pg.PoolClient> {
    node.outstanding++;
    let client: pg.PoolClient;
    try {
      client = await node.pool.connect();
    } catch (err) {
      node.outstanding--;
      this.suspect(node.name);
      throw err;
    }
    const onError = () => this.suspect(node.name);
    client.on('error', onError);
    this.listening.set(client, onError);
    return client;
  }

  private count(node: NodeState): void {
    if (node.role === 'primary') this.stats.toPrimary++;
    else this.stats.toReplica++;
  }

  /** Where `req` goes now (told to onRoute); null: nowhere yet. */
  private route(req: RouteRequest, kind: RouteEvent['kind']): Extract<Route, { kind: 'node' }> | null {
    // A node's state is its view (NodeView): routed as it stands, no copy on this path.
    const route = routeRequest(this.nodes, req, this.turn++);
    this.settings.onRoute?.({ kind, node: route.kind === 'node' ? route.node : null, reason: route.reason });
    return route.kind === 'node' ? route : null;
  }

  /** Routes `req`, waiting (failoverTimeoutMs at most) while no node can take it. */
  private async routeOrWait(
    req: RouteRequest,
    kind: RouteEvent['kind'],
  ): Promise<Extract<Route, { kind: 'node' }>> {
    const deadline = now() + this.settings.failoverTimeoutMs;
    this.stats.primaryWaits++;
    for (;;) {
      if (this.ended) throw new ClusterPoolError('E_POOL_ENDED', 'the pool was ended');
      await this.refresh();
      const route = this.route(req, kind);
      if (route) return route;
      if (now() > deadline)
        throw new ClusterPoolError(
          'E_NO_PRIMARY',
          `no node answered as the primary in ${this.settings.failoverTimeoutMs} ms (${this.describe()})`,
        );
      await sleep(PRIMARY_POLL_MS);
    }
  }

  /** Whether the connection's server replayed `lsn` within maxWaitMs (asked on that connection). */
  private async waitReplayed(client: pg.PoolClient, lsn: bigint): Promise<boolean> {
    if ((this.replayedOn.get(client) ?? -1n) >= lsn) return true;
    const deadline = now() + this.settings.maxWaitMs;
    let waited = false;
    for (;;) {
      const at = (await readPosition(client)).lsn;
      if (at >= lsn) {
        this.replayedOn.set(client, at);
        return true;
      }
      if (!waited) this.stats.replayWaits++;
      waited = true;
      if (now() > deadline) return false;
      await sleep(REPLAY_POLL_MS);
    }
  }

  /** The primary's position after a COMMIT on `c`: every replica that replayed it holds the write. */
  private async tokenAfter(c: pg.PoolClient): Promise<ReadToken | null> {
    try {
      const { rows } = await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      return rows[0]?.lsn ?? null;
    } catch {
      return null;
    }
  }

  private keepToken(value: unknown): void {
    const store = this.sessions.getStore();
    const token = (value as { token?: unknown } | null)?.token;
    if (store && typeof token === 'string') store.token = laterToken(store.token, token);
  }

  private release(node: NodeState, client: pg.PoolClient, broken: boolean | Error = false): void {
    node.outstanding--;
    const onError = this.listening.get(client);
    if (onError) client.off('error', onError);
    this.listening.delete(client);
    client.release(broken);
  }

  /**
   * A connection handed out by connect(): released as pg's are; a failure on it that says the node
   * is no primary, or gone, takes the node out of the routing at once (the ORM sees the error).
   */
  private watched(node: NodeState, client: pg.PoolClient): pg.PoolClient {
    let released = false;
    return new Proxy(client, {
      get: (target, prop, receiver) => {
        if (prop === 'release')
          return (err?: Error | boolean) => {
            if (released) return;
            released = true;
            this.release(node, target, err);
          };
        if (prop === 'query')
          return (...args: unknown[]) => {
            const result = (target.query as (...a: unknown[]) => unknown)(...args);
            if (result instanceof Promise)
              result.catch((err: unknown) => {
                const kind = failureKind(err, true);
                if (kind !== 'sql') this.suspect(node.name, kind === 'not-primary' ? 'replica' : 'unknown');
              });
            return result;
          };
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** Takes a node out of the routing until the next refresh says otherwise, and refreshes. */
  private suspect(name: string, role: NodeView['role'] = 'unknown'): void {
    const node = this.nodes.find((n) => n.name === name);
    if (!node || node.role === role) return;
    const was = node.role;
    node.role = role;
    if (was === 'primary') this.history.clear();
    this.emit('change', this.topology());
    void this.refresh();
  }

  private describe(): string {
    return this.nodes.map((n) => `${n.name}: ${n.role}`).join(', ');
  }

  /** Reads every node's role and position again; concurrent callers share one refresh. */
  private refresh(): Promise<void> {
    this.refreshing ??= this.refreshOnce().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async refreshOnce(): Promise<void> {
    if (this.ended) return;
    const agents = this.agents
      ? await askAgents(this.agents.urls, this.agents.ca, this.probeTimeoutMs())
      : null;
    for (const n of agents?.nodes ?? []) this.addNode(n.host, n.port);
    const probes = await Promise.all(this.nodes.map((n) => this.probe(n)));
    const at = now();
    const before = this.nodes.map((n) => n.role).join();
    const chosen = choosePrimary(
      this.nodes.map((n, i) => ({ name: n.name, probe: probes[i] })),
      agents ? agents.leader : undefined,
    );
    this.primaryReason = chosen.reason;
    const leader = probes[this.nodes.findIndex((n) => n.name === chosen.primary)];
    const previous = this.nodes.find((n) => n.role === 'primary');
    if (leader && previous && previous.name !== chosen.primary) this.history.clear();
    if (leader) this.history.add({ at, lsn: leader.lsn });
    this.nodes.forEach((n, i) => {
      const p = probes[i];
      if (p === undefined) return;
      if (p === null) {
        n.role = 'unknown';
        n.replayLsn = null;
        n.lagBytes = null;
        n.lagMs = null;
      } else if (!p.recovery) {
        n.role = n.name === chosen.primary ? 'primary' : 'unknown';
        n.replayLsn = null;
        n.lagBytes = 0;
        n.lagMs = 0;
      } else {
        const lag = this.history.lagOf(p.lsn, at);
        n.role = 'replica';
        n.replayLsn = p.lsn;
        n.lagBytes = lag.bytes;
        n.lagMs = lag.ms;
      }
    });
    if (this.nodes.map((n) => n.role).join() !== before) this.emit('change', this.topology());
  }

  /**
   * How long a node or an agent has to answer a refresh: a new connection (TLS, SCRAM) takes tens of
   * ms, and a refresh every 100 ms must not count a node down for that.
   */
  private probeTimeoutMs(): number {
    return Math.max(1000, this.settings.refreshMs);
  }

  /** A node's role and position; null: it did not answer; undefined: a probe of it is still under way. */
  private async probe(n: NodeState): Promise<Probe | null | undefined> {
    if (n.probing) return undefined;
    n.probing = true;
    try {
      return await probeNode(n.pool, this.probeTimeoutMs());
    } finally {
      n.probing = false;
    }
  }
}

/** The pool: `await createClusterPool(o).ready` to wait for its first look at the cluster. */
export function createClusterPool(options: ClusterPoolOptions): ClusterPool {
  return new ClusterPool(options);
}
