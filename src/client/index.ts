/**
 * `pgrepl/client`: a pool for applications over a pgrepl cluster (or any PostgreSQL primary with
 * streaming replicas). It depends on `pg` alone, never on pgrepl's server-side code.
 */
export { ClusterPool, createClusterPool } from './cluster-pool.js';
export { ReadPool } from './read-pool.js';
export type {
  ClusterPoolOptions,
  ClusterPoolStats,
  ReadOptions,
  RouteEvent,
  Topology,
  WriteResult,
} from './cluster-pool.js';
export { ClusterPoolError } from './client-errors.js';
export type { ClusterPoolErrorCode } from './client-errors.js';
export { isReadToken, laterToken } from './read-token.js';
export type { ReadToken } from './read-token.js';
