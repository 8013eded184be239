import type pg from 'pg';
import type { ClusterPool, ReadOptions } from './cluster-pool.js';

/**
 * A face of a ClusterPool for reads: `connect` and `query` go where read() would send them (its
 * name ends in Pool: drizzle recognises a pool by it).
 */
export class ReadPool {
  constructor(
    private readonly cluster: ClusterPool,
    private readonly options: ReadOptions,
  ) {}

  connect(): Promise<pg.PoolClient> {
    return this.cluster.checkout(this.cluster.readRequest(this.options), 'read');
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string | pg.QueryConfig,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.cluster.read<R>(text, values, this.options);
  }

  /** Ending a reader ends nothing: the cluster pool owns the connections. */
  async end(): Promise<void> {}

  /** As ClusterPool.asPgPool. */
  asPgPool(): pg.Pool {
    return this as unknown as pg.Pool;
  }
}
