import { PgreplError } from '../errors.js';
import { etcdBudget } from './etcd-budget.js';
import { requestJson, streamJsonLines } from './http-json.js';
import type { TlsMaterial } from './http-json.js';
import { monotonicNow } from '../monotonic-now.js';

/** One key as etcd holds it; revisions are etcd's (they fit a JS number for ~2^53 writes). */
export interface EtcdKv {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  /** The lease the key lives and dies with; '0' when none. */
  readonly lease: string;
}

export type EtcdCompare =
  | { readonly key: string; readonly createRevision: number }
  /** 0: the key does not exist. */
  | { readonly key: string; readonly modRevision: number }
  | { readonly key: string; readonly value: string }
  | { readonly key: string; readonly lease: string };

export type EtcdOp =
  | { readonly put: { readonly key: string; readonly value: string; readonly lease?: string } }
  | { readonly delete: { readonly key: string; readonly prefix?: boolean } };

export interface EtcdTxn {
  /** Every compare must hold (EQUAL) for `success` to run; otherwise `failure` runs. */
  readonly compare: readonly EtcdCompare[];
  readonly success: readonly EtcdOp[];
  readonly failure?: readonly EtcdOp[];
}

/** One member of the etcd cluster: its ID (a uint64, as etcd writes it), name and client URLs. */
export interface EtcdMember {
  readonly id: string;
  readonly name: string;
  readonly clientUrls: readonly string[];
}

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly kv: EtcdKv;
}

/**
 * The part of etcd's v3 API pgrepl uses, over its JSON gateway (`/v3/...`, base64 keys and values),
 * as Patroni does: KV, transactions, leases and watches. Every request goes to the endpoints in
 * turn until one answers or `requestTimeoutMs` has passed; the consensus is etcd's.
 */
export interface EtcdClient {
  readonly endpoints: readonly string[];
  get(key: string): Promise<EtcdKv | null>;
  /** Every key under `prefix`, and the store's revision at that moment. */
  list(prefix: string): Promise<{ kvs: EtcdKv[]; revision: number }>;
  put(key: string, value: string, lease?: string): Promise<void>;
  delete(key: string): Promise<void>;
  txn(t: EtcdTxn): Promise<{ succeeded: boolean; revision: number }>;
  /** A new lease of `ttlSeconds` (etcd rounds it up to its minimum). */
  grant(ttlSeconds: number): Promise<{ id: string; ttl: number }>;
  /**
   * Renews a lease; returns the seconds it now has, 0 when it had already expired. It answers only
   * once the member that took the renewal has also served a linearizable read after it.
   */
  keepAlive(id: string): Promise<number>;
  revoke(id: string): Promise<void>;
  /** Seconds a lease has left; 0 when it has expired. */
  timeToLive(id: string): Promise<number>;
  /** The members of the etcd cluster, and which of them is the raft leader now. */
  members(): Promise<{ members: EtcdMember[]; leaderId: string }>;
  /**
   * Hands the raft leadership to member `targetId`; `leaderUrl` must be the leader's client URL (etcd
   * takes it from the leader alone).
   */
  moveLeader(leaderUrl: string, targetId: string): Promise<void>;
  /**
   * Streams the changes of `key` (or of every key under it, with `prefix`) after `afterRevision`,
   * until `signal` is aborted or the stream breaks; resolves then, rejects on an error etcd reports.
   */
  watch(
    key: string,
    o: { prefix?: boolean; afterRevision: number; signal: AbortSignal },
    onEvents: (events: WatchEvent[]) => void,
  ): Promise<void>;
}

export interface EtcdClientOptions {
  readonly endpoints: readonly string[];
  /** How long one request may take over all endpoints before it fails with E_ETCD. */
  readonly requestTimeoutMs: number;
  /** For https:// endpoints: the CA to check etcd's certificate with, and a client certificate. */
  readonly tls?: TlsMaterial;
  /** An etcd user (etcd with auth enabled); its token is asked for per endpoint and renewed when refused. */
  readonly auth?: { readonly user: string; readonly password: string };
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => (s === undefined ? '' : Buffer.from(s, 'base64').toString('utf8'));

/** The least time a request is sent with, under a budget that has less left (withEtcdBudget). */
const MIN_REQUEST_MS = 10;

/** The end of the range of every key that starts with `prefix` (etcd's `range_end`). */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if ((bytes[i] as number) < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i] = (bytes[i] as number) + 1;
      return end.toString('base64');
    }
  }
  return b64('\0');
}

interface RawKv {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  lease?: string;
}

// The gateway leaves out fields at their zero value: a missing number is 0, a missing flag false.
const toKv = (r: RawKv): EtcdKv => ({
  key: unb64(r.key),
  value: unb64(r.value),
  createRevision: Number(r.create_revision ?? 0),
  modRevision: Number(r.mod_revision ?? 0),
  lease: r.lease ?? '0',
});

function toRequestOp(op: EtcdOp): object {
  if ('put' in op) {
    const { key, value, lease } = op.put;
    return { requestPut: { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) } };
  }
  const { key, prefix } = op.delete;
  return { requestDeleteRange: { key: b64(key), ...(prefix ? { range_end: prefixEnd(key) } : {}) } };
}

function toCompare(c: EtcdCompare): object {
  const key = b64(c.key);
  if ('createRevision' in c)
    return { key, target: 'CREATE', result: 'EQUAL', createRevision: String(c.createRevision) };
  if ('modRevision' in c) return { key, target: 'MOD', result: 'EQUAL', modRevision: String(c.modRevision) };
  if ('value' in c) return { key, target: 'VALUE', result: 'EQUAL', value: b64(c.value) };
  return { key, target: 'LEASE', result: 'EQUAL', lease: c.lease };
}

/** The API prefix an etcd version serves its JSON gateway under (3.3: v3beta; 3.4 on: v3). */
export function gatewayPrefix(version: string): string {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if (major > 3 || (major === 3 && minor >= 4)) return '/v3';
  if (major === 3 && minor === 3) return '/v3beta';
  return '/v3alpha';
}

/** A client of the etcd cluster at `endpoints` (http://host:port or https://host:port each). */
export function etcdClient(o: EtcdClientOptions): EtcdClient {
  if (o.endpoints.length === 0)
    throw new PgreplError('E_USAGE', 'no etcd endpoints: ha.etcd lists them, e.g. [http://127.0.0.1:2379]');
  const endpoints = o.endpoints.map((e) => e.replace(/\/+$/, ''));
  const bad = endpoints.find((e) => !/^https?:\/\//.test(e));
  if (bad)
    throw new PgreplError(
      'E_USAGE',
      `etcd endpoint ${bad}: an etcd client URL is http://host:port or https://host:port`,
    );
  const plain = endpoints.find((e) => e.startsWith('http://'));
  if (o.auth && plain)
    throw new PgreplError(
      'E_USAGE',
      `etcd endpoint ${plain}: an etcd user's password is sent only over https://, never in clear`,
    );
  let current = 0;
  const prefixes = new Map<string, string>();

  const prefixOf = async (endpoint: string, signal: AbortSignal): Promise<string> => {
    const known = prefixes.get(endpoint);
    if (known) return known;
    const v = (await requestJson(`${endpoint}/version`, null, signal, {}, o.tls)).body as {
      etcdserver?: string;
    };
    const p = gatewayPrefix(v.etcdserver ?? '3.4.0');
    prefixes.set(endpoint, p);
    return p;
  };

  // Tokens of the etcd user, per endpoint: a member that lagged when another gave one may not know it yet.
  const tokens = new Map<string, string>();
  const authHeaders = async (endpoint: string, signal: AbortSignal): Promise<Record<string, string>> => {
    if (!o.auth) return {};
    let token = tokens.get(endpoint);
    if (token === undefined) {
      const res = await requestJson(
        `${endpoint}${await prefixOf(endpoint, signal)}/auth/authenticate`,
        { name: o.auth.user, password: o.auth.password },
        signal,
        {},
        o.tls,
      );
      const answer = res.body as { token?: string; message?: string; error?: string };
      if (res.status !== 200 || !answer.token)
        throw new PgreplError(
          'E_ETCD',
          `etcd at ${endpoint} did not let user ${o.auth.user} in: ${answer.message ?? answer.error ?? res.status}`,
        );
      token = answer.token;
      tokens.set(endpoint, token);
    }
    return { authorization: token };
  };

  /**
   * POSTs `body` to `path` until an endpoint answers; etcd's own errors are not retried (but for a
   * repeatable request's refusal during an election: whileInElection). Each
   * endpoint gets an equal share of `requestTimeoutMs` (or of what the loop's budget has left), so
   * one that black-holes requests (a member cut off, a dead host whose packets vanish) leaves time
   * for the next. A request that may be sent twice (`repeatable`: a read, a lease renewal) keeps
   * waiting on an endpoint past its share while the next is tried beside it: a member that is only
   * slow (a loaded host) still answers within the whole time, where cutting it off at its share
   * failed every request. Writes go to one endpoint at a time: two of the same transaction could
   * answer "compare failed" for the one that succeeded.
   */
  const call = async <T>(
    path: string,
    body: object,
    o2: { repeatable?: boolean; confirm?: object } = {},
  ): Promise<T> => {
    const budget = etcdBudget();
    const allowedMs = Math.min(o.requestTimeoutMs, budget?.leftMs ?? Infinity);
    // Less than that could not be answered: the request is not sent at all.
    if (allowedMs < MIN_REQUEST_MS)
      throw new PgreplError(
        'E_ETCD',
        `${path} not sent: this loop spent its ${budget?.totalMs} ms of etcd time on requests that did not answer`,
      );
    const signal = AbortSignal.timeout(allowedMs);
    const began = monotonicNow();
    const deadline = began + allowedMs;
    try {
      if (!o2.repeatable) return await callWithin<T>(path, body, signal, deadline, allowedMs);
      const { confirm } = o2;
      return await callHedged<T>(path, signal, allowedMs, (endpoint, s) =>
        whileInElection(s, async () => {
          const answer = await attempt<T>(endpoint, path, body, s);
          if (confirm) await attempt(endpoint, '/kv/range', confirm, s);
          return answer;
        }),
      );
    } finally {
      if (budget) budget.leftMs -= monotonicNow() - began;
    }
  };

  /** One attempt on one endpoint: its answer, a PgreplError for etcd's refusal, else what failed. */
  const attempt = async <T>(
    endpoint: string,
    path: string,
    body: object,
    signal: AbortSignal,
  ): Promise<T> => {
    const send = async () =>
      requestJson(
        `${endpoint}${await prefixOf(endpoint, signal)}${path}`,
        body,
        signal,
        await authHeaders(endpoint, signal),
        o.tls,
      );
    let res = await send();
    if (o.auth && INVALID_TOKEN.test(String((res.body as { error?: unknown }).error ?? ''))) {
      // The member forgot the token (restarted, or it expired): once more with a new one.
      tokens.delete(endpoint);
      res = await send();
    }
    const answer = res.body as T & { error?: string; message?: string; code?: number };
    if (res.status !== 200 || answer.error !== undefined)
      throw new PgreplError(
        'E_ETCD',
        `etcd at ${endpoint} refused ${path}: ${answer.message ?? answer.error ?? res.status}`,
      );
    return answer;
  };

  const noAnswer = (path: string, allowedMs: number, lastError: unknown) =>
    new PgreplError(
      'E_ETCD',
      `no etcd endpoint answered ${path} (${endpoints.join(', ')}; ${allowedMs} ms at most): ${describe(lastError)}`,
      { cause: lastError },
    );

  const callWithin = async <T>(
    path: string,
    body: object,
    signal: AbortSignal,
    deadline: number,
    allowedMs: number,
  ): Promise<T> => {
    let lastError: unknown;
    for (let tried = 0; tried < endpoints.length && !signal.aborted; tried++) {
      const endpoint = endpoints[current] as string;
      const share = Math.max(1, Math.floor((deadline - monotonicNow()) / (endpoints.length - tried)));
      try {
        return await attempt<T>(endpoint, path, body, AbortSignal.any([signal, AbortSignal.timeout(share)]));
      } catch (err) {
        if (err instanceof PgreplError) throw err;
        lastError = err;
        current = (current + 1) % endpoints.length;
      }
    }
    throw noAnswer(path, allowedMs, lastError);
  };

  /**
   * The endpoints in turn from the current one, the next one started when the last has not answered
   * within its share or has failed; the first answer wins, the attempts still under way are aborted.
   */
  const callHedged = <T>(
    path: string,
    signal: AbortSignal,
    allowedMs: number,
    one: (endpoint: string, signal: AbortSignal) => Promise<T>,
  ): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const share = Math.max(1, Math.floor(allowedMs / endpoints.length));
      const first = current;
      const running = new Set<AbortController>();
      let started = 0;
      let failed = 0;
      let lastError: unknown;
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const finish = (end: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        for (const c of running) c.abort();
        end();
      };
      const onAbort = () => finish(() => reject(noAnswer(path, allowedMs, lastError ?? signal.reason)));
      const startNext = () => {
        clearTimeout(timer);
        if (done || started === endpoints.length) return;
        const i = (first + started++) % endpoints.length;
        const own = new AbortController();
        running.add(own);
        one(endpoints[i] as string, AbortSignal.any([signal, own.signal])).then(
          (answer) =>
            finish(() => {
              current = i;
              resolve(answer);
            }),
          (err: unknown) => {
            running.delete(own);
            if (err instanceof PgreplError) return finish(() => reject(err));
            lastError = err;
            if (++failed === endpoints.length) finish(() => reject(noAnswer(path, allowedMs, lastError)));
            // Nothing else under way: the next one now, not at the end of this one's share.
            else if (failed === started) startNext();
          },
        );
        if (started < endpoints.length) timer = setTimeout(startNext, share);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      startNext();
    });

  return {
    endpoints,
    async get(key) {
      const r = await call<{ kvs?: RawKv[] }>('/kv/range', { key: b64(key) }, { repeatable: true });
      const [kv] = r.kvs ?? [];
      return kv ? toKv(kv) : null;
    },
    async list(prefix) {
      const r = await call<{ kvs?: RawKv[]; header?: { revision?: string } }>(
        '/kv/range',
        { key: b64(prefix), range_end: prefixEnd(prefix) },
        { repeatable: true },
      );
      return { kvs: (r.kvs ?? []).map(toKv), revision: Number(r.header?.revision ?? 0) };
    },
    async put(key, value, lease) {
      await call('/kv/put', { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) });
    },
    async delete(key) {
      await call('/kv/deleterange', { key: b64(key) });
    },
    async txn(t) {
      const r = await call<{ succeeded?: boolean; header?: { revision?: string } }>('/kv/txn', {
        compare: t.compare.map(toCompare),
        success: t.success.map(toRequestOp),
        failure: (t.failure ?? []).map(toRequestOp),
      });
      return { succeeded: r.succeeded === true, revision: Number(r.header?.revision ?? 0) };
    },
    async grant(ttlSeconds) {
      const r = await call<{ ID?: string; TTL?: string }>('/lease/grant', { TTL: String(ttlSeconds) });
      if (r.ID === undefined) throw new PgreplError('E_ETCD', 'etcd granted a lease without an ID');
      return { id: r.ID, ttl: Number(r.TTL ?? 0) };
    },
    async keepAlive(id) {
      // etcd 3.4's leader renews a lease on its own, without the others: a leader cut off, or whose
      // raft loop is stuck on a slow disk, renews until it notices, after another was elected (etcd
      // issues 13915, 15247). A linearizable read on the same member after it (a quorum must still
      // follow that member's leader) is what makes the renewal count.
      const r = await call<{ result?: { TTL?: string } }>(
        '/lease/keepalive',
        { ID: id },
        { repeatable: true, confirm: { key: b64('/'), count_only: true } },
      );
      return Number(r.result?.TTL ?? 0);
    },
    async revoke(id) {
      try {
        await call('/lease/revoke', { ID: id });
      } catch (err) {
        // Revoking a lease that already expired is what was wanted.
        if (!(err instanceof PgreplError && /lease not found/.test(err.message))) throw err;
      }
    },
    async timeToLive(id) {
      const r = await call<{ TTL?: string }>('/lease/timetolive', { ID: id }, { repeatable: true });
      return Math.max(0, Number(r.TTL ?? 0));
    },
    async members() {
      const [list, status] = await Promise.all([
        call<{ members?: { ID?: string; name?: string; clientURLs?: string[] }[] }>(
          '/cluster/member/list',
          {},
          { repeatable: true },
        ),
        call<{ leader?: string }>('/maintenance/status', {}, { repeatable: true }),
      ]);
      return {
        members: (list.members ?? []).map((m) => ({
          id: m.ID ?? '0',
          name: m.name ?? '',
          clientUrls: m.clientURLs ?? [],
        })),
        leaderId: status.leader ?? '0',
      };
    },
    async moveLeader(leaderUrl, targetId) {
      const url = leaderUrl.replace(/\/+$/, '');
      const signal = AbortSignal.timeout(o.requestTimeoutMs);
      await attempt(url, '/maintenance/transfer-leadership', { targetID: targetId }, signal).catch(
        (err: unknown) => {
          if (err instanceof PgreplError) throw err;
          throw new PgreplError(
            'E_ETCD',
            `etcd at ${url} did not answer /maintenance/transfer-leadership: ${describe(err)}`,
            {
              cause: err,
            },
          );
        },
      );
    },
    async watch(key, w, onEvents) {
      const endpoint = endpoints[current] as string;
      const prefix = await prefixOf(
        endpoint,
        AbortSignal.any([w.signal, AbortSignal.timeout(o.requestTimeoutMs)]),
      );
      const create = {
        key: b64(key),
        ...(w.prefix ? { range_end: prefixEnd(key) } : {}),
        start_revision: String(w.afterRevision + 1),
      };
      const onLine = (line: string) => {
        // etcd refuses a forgotten token by ending or cancelling the watch: the next one asks anew.
        if (o.auth && INVALID_TOKEN.test(line)) tokens.delete(endpoint);
        const msg = JSON.parse(line) as {
          result?: {
            events?: { type?: string; kv?: RawKv }[];
            canceled?: boolean;
            cancel_reason?: string;
          };
          error?: { message?: string };
        };
        if (msg.error) throw new PgreplError('E_ETCD', `etcd ended the watch: ${msg.error.message}`);
        if (msg.result?.canceled)
          throw new PgreplError('E_ETCD', `etcd cancelled the watch: ${msg.result.cancel_reason ?? ''}`);
        const events = (msg.result?.events ?? []).map((e) => ({
          type: e.type === 'DELETE' ? ('delete' as const) : ('put' as const),
          kv: toKv(e.kv ?? {}),
        }));
        if (events.length > 0) onEvents(events);
      };
      let opened = false;
      try {
        const headers = await authHeaders(
          endpoint,
          AbortSignal.any([w.signal, AbortSignal.timeout(o.requestTimeoutMs)]),
        );
        await streamJsonLines(
          `${endpoint}${prefix}/watch`,
          { create_request: create },
          w.signal,
          (line) => {
            opened = true;
            onLine(line);
          },
          headers,
          o.tls,
        );
      } catch (err) {
        if (w.signal.aborted) return;
        if (err instanceof PgreplError) throw err;
        if (!opened) {
          current = (current + 1) % endpoints.length;
          throw new PgreplError('E_ETCD', `etcd at ${endpoint} did not open a watch: ${describe(err)}`, {
            cause: err,
          });
        }
        throw new PgreplError('E_ETCD', `the watch on etcd at ${endpoint} broke: ${describe(err)}`, {
          cause: err,
        });
      }
    },
  };
}

/** What etcd says of a token it no longer knows (expired, or given before a restart). */
const INVALID_TOKEN = /invalid auth token/;

/**
 * etcd's refusals while its raft leadership moves (an election, a leader handing over): the
 * request was not served and the next one, a moment later, is. Only requests that may be sent
 * twice are repeated on them: a write refused with "request timed out" may still be applied.
 */
const IN_ELECTION = /etcdserver: (leader changed|no leader|request timed out|too many requests)/;

/**
 * `one()` again while etcd refuses it for an election under way, pausing 25 ms then twice as long
 * up to 200 ms, until `signal` ends: etcd hands its leadership over in tens of milliseconds, and
 * the agent moves it on purpose (raft-leader-placement), so a read at that moment must not fail a
 * switchover.
 */
async function whileInElection<T>(signal: AbortSignal, one: () => Promise<T>): Promise<T> {
  for (let pauseMs = 25; ; pauseMs = Math.min(pauseMs * 2, 200)) {
    try {
      return await one();
    } catch (err) {
      if (!(err instanceof PgreplError) || !IN_ELECTION.test(err.message) || signal.aborted) throw err;
      const resumed = await new Promise<boolean>((resolve) => {
        const onAbort = () => (clearTimeout(t), resolve(false));
        const t = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve(true)), pauseMs);
        signal.addEventListener('abort', onAbort, { once: true });
      });
      if (!resumed) throw err;
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}
