import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { localNodeDisk } from './local-node-disk.js';
import { notLocalDisk } from './node-disk.js';
import type { NodeDisk } from './node-disk.js';

/** The disk of `node`: its own files where its host is this machine; refusals elsewhere. */
export function diskOf(ctx: ClusterContext, node: NodeSpec): NodeDisk {
  return ctx.localNodes.has(node.name) ? localNodeDisk(ctx, node) : notLocalDisk(node);
}
