import { PgreplError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { ClusterSpec } from '../spec/cluster-spec.js';
import { readHaState } from '../dcs/ha-state.js';
import { requestJson } from '../dcs/http-json.js';
import type { JsonAnswer } from '../dcs/http-json.js';
import { readApiToken } from './api-token.js';
import type { HaTarget } from './ha-commands.js';
import { agentApiUrl, haPaths } from './ha-services.js';

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
  const record = (await readHaState(t.etcd, spec.cluster)).members.get(node);
  const known = spec.nodes.find((n) => n.name === node);
  const base = record?.api ?? (known ? agentApiUrl(known, t.ha) : undefined);
  if (!base) throw new PgreplError('E_UNKNOWN_NODE', `no node named "${node}" in ${spec.source}`);
  let res: JsonAnswer;
  try {
    res = await requestJson(`${base}${path}`, body, AbortSignal.timeout(timeoutMs), {
      authorization: `Bearer ${token}`,
    });
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
