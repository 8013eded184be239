import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { localNodeControl } from './local-node-control.js';
import { notLocalControl } from './node-control.js';
import type { NodeControl } from './node-control.js';

/** The control of `node`: its own files and processes where its host is this machine; refusals elsewhere. */
export function controlOf(ctx: ClusterContext, node: NodeSpec): NodeControl {
  return ctx.localNodes.has(node.name) ? localNodeControl(ctx, node) : notLocalControl(node);
}
