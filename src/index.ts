// pgrepl's programmatic face: what the CLI is built from, for scripts and for the coming agent and
// REST API. The application's pool will ship apart, as `pgrepl/client`, depending on none of this.
export { loadSpec } from './cluster-spec/load-spec.js';
export type { ClusterSpec, NodeSpec } from './cluster-spec/cluster-spec.js';
export { buildContext } from './cluster/context/cluster-context.js';
export type { ClusterContext } from './cluster/context/cluster-context.js';
export { observeCluster } from './cluster/observe/observe-cluster.js';
export type { ClusterObservation, NodeObservation, ObservedRole } from './cluster/observe/observation.js';
export { buildStatus } from './cluster/decide/status-report.js';
export type { ClusterStatus, NodeStatus } from './cluster/decide/status-report.js';
export { processRunner } from './postgres/command-runner.js';
export { PgreplError } from './errors.js';
export type { ErrorCode } from './errors.js';
