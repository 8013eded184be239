import { renderPgHba } from '../../postgres/render-pg-hba.js';
import {
  effectiveSettings,
  renderPostgresqlConf,
  synchronousStandbyNames,
} from '../../postgres/render-postgresql-conf.js';
import type { PostgresqlConfInput } from '../../postgres/render-postgresql-conf.js';
import type { ClusterSpec, NodeSpec } from '../../spec/cluster-spec.js';

/** The facts rendering needs beyond the spec, resolved once by the context. */
export interface RenderFacts {
  readonly sourceAddresses: readonly string[];
  readonly replicationPassfile: string;
  readonly pgMajor: number;
}

export interface NodeConfig {
  readonly postgresqlConf: string;
  readonly pgHba: string;
  /** Every setting the file sets, for verifying what is in effect. */
  readonly settings: Readonly<Record<string, string>>;
}

/** The files one node should have, given which node it streams from (none for the primary). */
export function renderNodeConfig(
  spec: ClusterSpec,
  facts: RenderFacts,
  node: NodeSpec,
  upstream: NodeSpec | undefined,
): NodeConfig {
  const input: PostgresqlConfInput = {
    cluster: spec.cluster,
    node: node.name,
    host: node.host,
    port: node.port,
    nodeCount: spec.nodes.length,
    pgMajor: facts.pgMajor,
    settings: spec.settings,
    synchronousStandbyNames: synchronousStandbyNames(
      spec.replication.mode,
      spec.replication.syncCount,
      spec.nodes.filter((n) => n.name !== node.name).map((n) => n.name),
    ),
    upstream: upstream && {
      host: upstream.host,
      port: upstream.port,
      user: spec.replication.user,
      passfile: facts.replicationPassfile,
      slot: node.name,
    },
  };
  return {
    postgresqlConf: renderPostgresqlConf(input),
    // Every node gets the same rules: any node may become the primary later.
    pgHba: renderPgHba({
      node: node.name,
      superuser: spec.superuser.name,
      replicationUser: spec.replication.user,
      replicationSources: facts.sourceAddresses,
      adminSources: facts.sourceAddresses,
      access: spec.access,
    }),
    settings: effectiveSettings(input),
  };
}
