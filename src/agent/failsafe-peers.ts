import { requestJson } from '../dcs/http-json.js';
import type { TlsMaterial } from '../dcs/http-json.js';
import type { ClusterSpec, HaSpec, NodeSpec } from '../cluster-spec/cluster-spec.js';
import { agentApiUrl } from '../ha/ha-services.js';

/**
 * A leader's failsafe round: asks every other node's agent, at the address the spec gives it and
 * with the cluster's API token, to promise not to promote (POST /failsafe). Each answer within the
 * time a request to etcd would get; any answer but 200 is no promise.
 */
export function failsafePeers(o: {
  readonly ha: HaSpec;
  readonly token: string | null;
  readonly context: () => { readonly me: NodeSpec; readonly spec: ClusterSpec };
  /** What the peers' https:// certificates are checked against; undefined without TLS. */
  readonly tls: () => TlsMaterial | undefined;
}): () => Promise<{ node: string; ok: boolean; why: string }[]> {
  return () => {
    const { me, spec } = o.context();
    return Promise.all(
      spec.nodes
        .filter((n) => n.name !== me.name)
        .map(async (n) => {
          if (o.token === null) return { node: n.name, ok: false, why: 'this agent has no API token' };
          try {
            const r = await requestJson(
              `${agentApiUrl(spec, n, o.ha)}/failsafe`,
              { leader: me.name },
              AbortSignal.timeout(Math.min(1000, o.ha.retryTimeoutMs)),
              { authorization: `Bearer ${o.token}` },
              o.tls(),
            );
            const body = r.body as { message?: string };
            return { node: n.name, ok: r.status === 200, why: body.message ?? `HTTP ${r.status}` };
          } catch (err) {
            return { node: n.name, ok: false, why: `its agent does not answer (${(err as Error).message})` };
          }
        }),
    );
  };
}
