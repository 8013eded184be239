import { PgreplError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { ClusterSpec } from '../cluster-spec/cluster-spec.js';
import type { MemberRecord } from '../dcs/ha-values.js';
import { isLocalHost } from '../postgres/local-address.js';
import { watchProcess } from '../postgres/process-watch.js';
import { requestJson } from '../dcs/http-json.js';
import type { JsonAnswer, TlsMaterial } from '../dcs/http-json.js';
import { readApiToken } from '../ha/api-token.js';
import type { HaTarget } from './ha-target.js';
import { agentApiTls, agentApiUrl, haPaths } from '../ha/ha-services.js';
import { monotonicNow } from '../monotonic-now.js';

/**
 * Asks `node`'s agent to do `path` (POST, with the bearer token from the state dir's secret file) and
 * returns its JSON answer. The agent's address is the one its member record publishes. A refusal
 * comes back as the agent's own error code and message.
 */
export async function askAgent<T>(
  spec: ClusterSpec,
  t: HaTarget,
  node: string,
  path: string,
  body: object = {},
  timeoutMs = 180_000,
): Promise<T> {
  const tokenFile = haPaths(spec.stateDir).apiToken;
  const token = readApiToken(tokenFile);
  if (token === null)
    throw new PgreplError(
      'E_UNAUTHORIZED',
      `no API token at ${tokenFile}: \`pgrepl up --ha\` makes one; on another machine, copy that file here (mode 0600)`,
    );
  const known = spec.nodes.find((n) => n.name === node);
  if (!known) throw new PgreplError('E_UNKNOWN_NODE', `no node named "${node}" in ${spec.source}`);
  // The token goes only to the address the spec gives the node's agent: a member record in etcd
  // is written by whoever can write to etcd, and must not be able to send the token elsewhere.
  const base = agentApiUrl(spec, known, t.ha);
  const record = (await t.store.read()).members.get(node);
  if (record && record.api !== base)
    throw new PgreplError(
      'E_UNREACHABLE',
      `${node}'s member record in etcd names its agent at ${record.api}, but the spec puts it at ${base}; ` +
        "the token is sent only to the spec's address: check the spec (host, port, ha.apiPortOffset) against the agent that runs",
    );
  let res: JsonAnswer;
  try {
    res = await requestJson(
      `${base}${path}`,
      body,
      AbortSignal.timeout(timeoutMs),
      { authorization: `Bearer ${token}` },
      agentApiTls(spec),
    );
  } catch (err) {
    throw new PgreplError(
      'E_UNREACHABLE',
      `${node}'s agent at ${base} does not answer (${(err as Error).message}); \`pgrepl status\` shows which agents run`,
      { cause: err },
    );
  }
  const answer = res.body as { code?: ErrorCode; message?: string };
  if (res.status < 200 || res.status > 299)
    throw new PgreplError(
      answer.code ?? 'E_INTERNAL',
      `${node}'s agent refused: ${answer.message ?? `HTTP ${res.status}`}`,
    );
  return answer as T;
}

/**
 * Waits until the agent that wrote `record` has ended, for at most `timeoutMs`: on this machine
 * until its process is gone (its PID exited, reaped or not); on another host until its API
 * refuses connections, the last thing an agent closes before it exits. False when time ran out.
 */
export async function waitAgentGone(
  record: MemberRecord,
  host: string,
  timeoutMs: number,
  tls?: TlsMaterial,
): Promise<boolean> {
  const deadline = monotonicNow() + timeoutMs;
  const gone: () => Promise<boolean> = (await isLocalHost(host))
    ? (
        (w) => async () =>
          !w.alive()
      )(watchProcess(record.pid))
    : async () =>
        requestJson(`${record.api}/liveness`, null, AbortSignal.timeout(1000), {}, tls).then(
          () => false,
          (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED',
        );
  while (monotonicNow() < deadline) {
    if (await gone()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
