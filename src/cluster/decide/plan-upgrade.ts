import type { ClusterSpec } from '../../cluster-spec/cluster-spec.js';
import type { DatabaseFacts, TableFacts } from '../../postgres/logical-queries.js';
import { preflightPublisher } from './decide-logical.js';
import type { PreflightFinding } from './decide-logical.js';

/** One database of the cluster to upgrade, as read on its primary. */
export interface UpgradeDatabase {
  readonly name: string;
  readonly tables: readonly TableFacts[];
  readonly facts: DatabaseFacts;
  /** Bytes of its tables (what the initial copy moves; indexes are rebuilt on the new side). */
  readonly tableBytes: number;
}

export interface UpgradeInput {
  readonly spec: ClusterSpec;
  readonly fromMajor: number;
  readonly to: { readonly binDir: string; readonly version: string; readonly major: number };
  /** Extensions the new installation has files for. */
  readonly newExtensions: readonly string[];
  readonly portOffset: number;
  readonly databases: readonly UpgradeDatabase[];
  /** Copy throughput assumed for the estimate, MB/s. */
  readonly copyMbPerSecond: number;
}

export interface UpgradePlan {
  /** The new cluster beside the old one: the same nodes on the same hosts, other ports and a state dir of its own. */
  readonly target: {
    readonly cluster: string;
    readonly stateDir: string;
    readonly binDir: string;
    readonly version: string;
    readonly nodes: readonly { readonly name: string; readonly host: string; readonly port: number }[];
  };
  readonly findings: readonly (PreflightFinding & { readonly database: string })[];
  /** Errors that refuse the upgrade until fixed (or skipped). */
  readonly blocking: number;
  readonly steps: readonly string[];
  readonly copyBytes: number;
  readonly copySeconds: number;
}

/**
 * The online upgrade of a cluster to a newer major version, decided from what its primary holds:
 * where the new cluster goes, what the pre-flight check finds in every database (as for a
 * publication of all its tables, plus the extensions the new installation lacks), the steps, and
 * how long the initial copy should take. Pure.
 */
export function planUpgrade(i: UpgradeInput): UpgradePlan | { refusal: string } {
  if (i.to.major <= i.fromMajor)
    return {
      refusal: `${i.to.binDir} is PostgreSQL ${i.to.version}, not newer than the cluster's ${i.fromMajor}: an upgrade goes to a newer major version`,
    };
  const nodes = i.spec.nodes.map((n) => ({ name: n.name, host: n.host, port: n.port + i.portOffset }));
  const clash = nodes.find((n) => i.spec.nodes.some((o) => o.host === n.host && o.port === n.port));
  if (clash)
    return {
      refusal: `port ${clash.port} of the new ${clash.name} is one the cluster uses: give another --port-offset`,
    };
  const findings = i.databases.flatMap((d) =>
    [
      ...preflightPublisher('all', d.tables, d.facts).map((f) =>
        f.code === 'sequences'
          ? {
              ...f,
              message: `${d.facts.sequences.length} sequence${d.facts.sequences.length === 1 ? '' : 's'}: not replicated, copied exactly at the cutover`,
              fix: 'nothing to do',
            }
          : f,
      ),
      ...d.facts.extensions
        .filter((e) => !i.newExtensions.includes(e))
        .map((e): PreflightFinding => ({
          code: 'missing-extension',
          severity: 'error',
          subject: e,
          message: `extension ${e} is installed, and PostgreSQL ${i.to.version} in ${i.to.binDir} has no files for it`,
          fix: `install ${e} for PostgreSQL ${i.to.major} there`,
        })),
    ].map((f) => ({ ...f, database: d.name })),
  );
  const copyBytes = i.databases.reduce((a, d) => a + d.tableBytes, 0);
  const target = {
    cluster: `${i.spec.cluster}-pg${i.to.major}`,
    stateDir: `${i.spec.stateDir}/upgrade-pg${i.to.major}`,
    binDir: i.to.binDir,
    version: i.to.version,
    nodes,
  };
  const names = i.databases.map((d) => d.name).join(', ');
  return {
    target,
    findings,
    blocking: findings.filter((f) => f.severity === 'error').length,
    copyBytes,
    copySeconds: copyBytes / 2 ** 20 / i.copyMbPerSecond,
    steps: [
      `make cluster ${target.cluster} (PostgreSQL ${i.to.version}) beside ${i.spec.cluster}: ${nodes.map((n) => `${n.name} on ${n.host}:${n.port}`).join(', ')}, state in ${target.stateDir}`,
      `copy the schema of ${names} into it (pg_dump --schema-only)`,
      `publish every table of ${names} on ${i.spec.cluster} (wal_level logical: replicas restart first, then the primary)`,
      `subscribe ${target.cluster} to them: the initial copy of ${(copyBytes / 2 ** 20).toFixed(0)} MB, then streaming, until it has caught up`,
      `block DDL on ${i.spec.cluster} (an event trigger) until the upgrade is finished or rolled back`,
      `cut over: fence writes on ${i.spec.cluster}'s primary, wait until the subscription confirmed every acknowledged commit, copy every sequence's value, move the agents' routing and the client library to ${target.cluster}; abort and lift the fence if the drain passes its budget`,
      `keep a reverse subscription from ${target.cluster} to ${i.spec.cluster} until \`pgrepl upgrade --finish\` (\`--rollback\` returns with no commit lost)`,
    ],
  };
}
