import { join } from 'node:path';
import type { ClusterContext } from '../cluster/context/cluster-context.js';
import { fileStore } from '../cluster/store/file-store.js';
import type { NodeSpec } from '../cluster-spec/cluster-spec.js';
import { PgreplError } from '../errors.js';
import { ensureOwnedDir } from '../postgres/owned-paths.js';
import type { EtcdClient } from '../dcs/etcd-client.js';
import { haStore } from '../dcs/ha-store.js';
import { haPaths } from '../ha/ha-services.js';

/**
 * The context an agent acts in: only its own node is local (every other node's control refuses
 * with E_NOT_LOCAL, even where that node shares this machine), and its journal and history are
 * its own, so agents on one machine never share or fight over a file.
 */
export function agentContext(ctx: ClusterContext, node: NodeSpec, etcd?: EtcdClient): ClusterContext {
  if (!ctx.localNodes.has(node.name))
    throw new PgreplError(
      'E_NOT_LOCAL',
      `${node.name} (${node.host}) is not on this machine: run its agent on its own host`,
    );
  const dir = join(haPaths(ctx.spec.stateDir).agentDir(node.name), 'store');
  ensureOwnedDir(dir, 0o700, ctx.env.runAs);
  const own = fileStore(dir, ctx.spec.cluster, ctx.env.runAs);
  return {
    ...ctx,
    localNodes: new Set([node.name]),
    // Its history goes to etcd, where `pgrepl history` reads every agent's from anywhere.
    store: etcd
      ? {
          ...own,
          appendHistory: (e) => haStore(etcd, ctx.spec.cluster).appendHistory(e),
          readHistory: () => haStore(etcd, ctx.spec.cluster).readHistory(),
        }
      : own,
  };
}
