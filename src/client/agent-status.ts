import http from 'node:http';
import https from 'node:https';

/** What the pool reads from an agent's `/status`: who leads, and where each node's server listens. */
export interface AgentView {
  /** host:port of the node holding the leader key with its promotion done; null: none now. */
  readonly leader: string | null;
  readonly nodes: readonly { readonly name: string; readonly host: string; readonly port: number }[];
}

interface StatusBody {
  readonly leader?: { readonly node?: string; readonly ready?: boolean } | null;
  readonly nodes?: readonly { readonly name?: string; readonly host?: string; readonly port?: number }[];
}

/** GET `url` as JSON within `timeoutMs`; https checked against `ca` when given. */
function getJson(url: string, ca: string | undefined, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const get = u.protocol === 'https:' ? https.get : http.get;
    const req = get(u, { timeout: timeoutMs, ...(ca && u.protocol === 'https:' ? { ca } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
          resolve(JSON.parse(body));
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * Asks every agent for its status. The leader is the one most of the answering agents name (an
 * agent cut off from etcd may name none, or the leader it last saw); a tie names none. Null: no
 * agent answered.
 */
export async function askAgents(
  agents: readonly string[],
  ca: string | undefined,
  timeoutMs: number,
): Promise<AgentView | null> {
  const answers = await Promise.all(
    agents.map((a) =>
      getJson(new URL('/status', a).toString(), ca, timeoutMs).then(
        (b) => b as StatusBody,
        () => null,
      ),
    ),
  );
  const views = answers.flatMap((b): AgentView[] => {
    if (!b || !Array.isArray(b.nodes)) return [];
    const nodes = b.nodes.flatMap((n) =>
      typeof n.name === 'string' && typeof n.host === 'string' && typeof n.port === 'number'
        ? [{ name: n.name, host: n.host, port: n.port }]
        : [],
    );
    const leader = b.leader?.ready ? nodes.find((n) => n.name === b.leader?.node) : undefined;
    return [{ leader: leader ? `${leader.host}:${leader.port}` : null, nodes }];
  });
  if (views.length === 0) return null;
  const votes = new Map<string, number>();
  for (const v of views) if (v.leader !== null) votes.set(v.leader, (votes.get(v.leader) ?? 0) + 1);
  const ranked = [...votes].sort((a, b) => b[1] - a[1]);
  const [first, second] = ranked;
  const leader = first && (second === undefined || second[1] < first[1]) ? first[0] : null;
  const nodes = views.reduce(
    (most, v) => (v.nodes.length > most.length ? v.nodes : most),
    views[0]?.nodes ?? [],
  );
  return { leader, nodes };
}
