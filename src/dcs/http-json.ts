import { Agent, request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { createHash } from 'node:crypto';

/**
 * JSON over HTTP/1.1 for the etcd gateway and the agents' APIs, on node:http with kept-alive
 * connections. An agent talks to etcd several times a second for as long as it runs; `fetch`
 * (undici and its web streams) cost it about twice the CPU per request and a few MiB more resident
 * memory, against targets of 1 % of a core and 50 MiB, and loading it costs a command ~30 ms.
 */
export interface JsonAnswer {
  readonly status: number;
  readonly body: unknown;
}

/**
 * What an https:// request trusts and shows: the CA that signed the server's certificate (checked
 * with its host name or address, as libpq's verify-full does), and a client certificate and key
 * when the server asks for one (etcd with --client-cert-auth).
 */
export interface TlsMaterial {
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

// One agent per client module: few sockets, reused; a socket etcd closed is replaced on the next call.
const agent = new Agent({ keepAlive: true, maxSockets: 8 });
// One https agent per TLS material, for the same reuse (a TLS handshake costs more than a request).
// By content: a command that reads the files again (status --watch, each round) gets the same agent
// and its kept-alive sockets, not one more of each per round.
const httpsAgents = new Map<string, HttpsAgent>();
const agentOfMaterial = new WeakMap<TlsMaterial, HttpsAgent>();

function contentKey(tls: TlsMaterial | undefined): string {
  if (!tls) return 'system CAs';
  const h = createHash('sha256');
  for (const part of [tls.ca, tls.cert, tls.key]) h.update(part ?? '').update('\0');
  return h.digest('hex');
}

/**
 * A request on the agent for `url`'s scheme. node:https is loaded at the first https:// request
 * only: loaded with the module it added ~1.1 MiB to every agent's RSS, most of which talk http://.
 */
async function open(
  url: string,
  options: RequestOptions,
  tls: TlsMaterial | undefined,
  onAnswer: (res: IncomingMessage) => void,
): Promise<ClientRequest> {
  if (!url.startsWith('https:')) return httpRequest(url, { ...options, agent }, onAnswer);
  const https = await import('node:https');
  let tlsAgent = tls && agentOfMaterial.get(tls);
  if (!tlsAgent) {
    const key = contentKey(tls);
    tlsAgent = httpsAgents.get(key);
    if (!tlsAgent) {
      // Without material, the system's CAs.
      tlsAgent = new https.Agent({ keepAlive: true, maxSockets: 8, ...tls });
      httpsAgents.set(key, tlsAgent);
    }
    if (tls) agentOfMaterial.set(tls, tlsAgent);
  }
  return https.request(url, { ...options, agent: tlsAgent }, onAnswer);
}

function send(
  url: string,
  body: object,
  signal: AbortSignal,
  headers: Record<string, string> = {},
  tls?: TlsMaterial,
): Promise<IncomingMessage> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    void open(
      url,
      {
        method: 'POST',
        signal,
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
        },
      },
      tls,
      resolve,
    ).then((req) => req.once('error', reject).end(text), reject);
  });
}

/** GET `url` (POST when `body` is given, with `headers`) and parse the answer as JSON. */
export async function requestJson(
  url: string,
  body: object | null,
  signal: AbortSignal,
  headers: Record<string, string> = {},
  tls?: TlsMaterial,
): Promise<JsonAnswer> {
  const res =
    body === null
      ? await new Promise<IncomingMessage>((resolve, reject) => {
          open(url, { signal, headers }, tls, resolve).then((req) => req.once('error', reject).end(), reject);
        })
      : await send(url, body, signal, headers, tls);
  res.setEncoding('utf8');
  let text = '';
  for await (const chunk of res) text += chunk as string;
  return { status: res.statusCode ?? 0, body: text === '' ? {} : (JSON.parse(text) as unknown) };
}

/**
 * POSTs `body` and hands each line of the streamed answer to `onLine` (etcd's watch sends one JSON
 * object per line) until the stream ends or `signal` aborts; a throw from `onLine` ends it too.
 */
export async function streamJsonLines(
  url: string,
  body: object,
  signal: AbortSignal,
  onLine: (line: string) => void,
  headers: Record<string, string> = {},
  tls?: TlsMaterial,
): Promise<void> {
  const res = await send(url, body, signal, headers, tls);
  res.setEncoding('utf8');
  let buffered = '';
  for await (const chunk of res) {
    buffered += chunk as string;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line !== '') onLine(line);
    }
  }
}
