import { renderPgHba } from '../../postgres/render-pg-hba.js';
import {
  effectiveSettings,
  renderPostgresqlConf,
  synchronousStandbyNames,
} from '../../postgres/render-postgresql-conf.js';
import type { ArchiveConf, PostgresqlConfInput } from '../../postgres/render-postgresql-conf.js';
import type { BackupRepo, ClusterSpec, NodeSpec, TlsFiles } from '../../cluster-spec/cluster-spec.js';
import { confFilesOf } from '../../cluster-spec/backup-paths.js';
import type { PgbackrestPaths } from '../../cluster-spec/backup-paths.js';
import { archiveGetCommand, archivePushCommand } from '../../backup/pgbackrest-commands.js';

/** What rendering needs to know of the host a node runs on. */
export interface NodeHostFacts {
  /** The address its connections to the other nodes leave from, which their pg_hba must admit. */
  readonly connectsFrom: string;
  /** The libpq passfile its walreceiver and pg_basebackup read the replication password from. */
  readonly replicationPassfile: string;
  /** Where its TLS files are on its host; undefined when the cluster runs without TLS. */
  readonly tls: TlsFiles | undefined;
  /** Where its pgBackRest files are on its host (used when the spec has `backup:`). */
  readonly pgbackrest: PgbackrestPaths;
}

/** The facts rendering needs beyond the spec, resolved once by the context. */
export interface RenderFacts {
  readonly pgMajor: number;
  /** Per node name, facts of that node's host (not of the machine that renders). */
  readonly hosts: Readonly<Record<string, NodeHostFacts>>;
}

function hostOf(facts: RenderFacts, node: NodeSpec): NodeHostFacts {
  const host = facts.hosts[node.name];
  if (!host) throw new Error(`no host facts for node ${node.name}`);
  return host;
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
  const tls = hostOf(facts, node).tls;
  if ((spec.tls === 'off') !== (tls === undefined))
    throw new Error(`TLS files of ${node.name} do not match tls: ${spec.tls}`);
  const others = spec.nodes.filter((n) => n.name !== node.name).map((n) => n.name);
  const publishes = spec.logical.publications.length > 0;
  // PostgreSQL 17 keeps a subscriber's slot across a failover or switchover of its publisher: each
  // standby synchronizes the failover slots (sync_replication_slots, which needs
  // hot_standby_feedback and a database in primary_conninfo), and a logical walsender sends only
  // what the standbys' physical slots confirm (synchronized_standby_slots): a promoted standby then
  // has every change a subscriber got. While a replica is down, subscribers wait for it.
  const failoverSlots = publishes && facts.pgMajor >= 17 && others.length > 0;
  const input: PostgresqlConfInput = {
    cluster: spec.cluster,
    node: node.name,
    host: node.host,
    port: node.port,
    nodeCount: spec.nodes.length,
    pgMajor: facts.pgMajor,
    walSegmentSize: spec.postgres.walSegmentSize ?? 16,
    // A publication needs logical decoding of the WAL: every node, since any may become the primary.
    settings: {
      ...(publishes ? { wal_level: 'logical' } : {}),
      ...(failoverSlots
        ? {
            sync_replication_slots: 'on',
            hot_standby_feedback: 'on',
            synchronized_standby_slots: others.join(','),
          }
        : {}),
      ...spec.settings,
    },
    synchronousStandbyNames: synchronousStandbyNames(
      spec.replication.mode,
      spec.replication.syncCount,
      others,
    ),
    upstream: upstream && {
      host: upstream.host,
      port: upstream.port,
      user: spec.replication.user,
      passfile: hostOf(facts, node).replicationPassfile,
      slot: node.name,
      sslRootCert: tls?.ca,
      ...(failoverSlots ? { dbname: 'postgres' } : {}),
    },
    tls: tls && { cert: tls.cert, key: tls.key },
    archive: spec.backup && archiveConf(spec.cluster, hostOf(facts, node).pgbackrest, spec.backup.repo),
  };
  // Every node's connections, replication and pgrepl's own (it runs on the nodes' hosts).
  const sources = [...new Set(spec.nodes.map((n) => hostOf(facts, n).connectsFrom))];
  return {
    postgresqlConf: renderPostgresqlConf(input),
    // Every node gets the same rules: any node may become the primary later.
    pgHba: renderPgHba({
      node: node.name,
      superuser: spec.superuser.name,
      replicationUser: spec.replication.user,
      replicationSources: sources,
      adminSources: sources,
      access: spec.access,
      // Subscribers' walsenders connect to a database, not to the replication pseudo-database.
      logical: [
        ...spec.logical.publications.map((p) => ({
          database: p.database,
          sources: [...sources, ...p.allow],
        })),
        // The standbys' slot synchronization reads the primary's slots in that database.
        ...(failoverSlots ? [{ database: 'postgres', sources }] : []),
      ],
      ssl: spec.tls !== 'off',
      localSuperuser: spec.backup !== undefined,
    }),
    settings: effectiveSettings(input),
  };
}

/** A node's WAL archiving: pgBackRest's archive-push with the node's own pgbackrest.conf. */
function archiveConf(stanza: string, paths: PgbackrestPaths, repo: BackupRepo): ArchiveConf {
  const conf = confFilesOf(paths, repo);
  return {
    command: archivePushCommand(stanza, conf),
    restoreCommand: archiveGetCommand(stanza, conf),
    socketDir: paths.socketDir,
  };
}

/**
 * The files of a server restored on the side (`pgrepl restore --into`): on loopback at `port`, no
 * upstream, no archive (its WAL must never reach the cluster's repository: a restored copy's new
 * timeline there would be taken for the cluster's), no TLS, and no synchronous standby to wait for.
 * Only the superuser may connect, from this machine.
 */
export function renderRestoredConfig(
  spec: ClusterSpec,
  o: { readonly port: number; readonly pgMajor: number },
): NodeConfig {
  const input: PostgresqlConfInput = {
    cluster: spec.cluster,
    node: `${spec.cluster}-restored`,
    host: '127.0.0.1',
    port: o.port,
    nodeCount: spec.nodes.length,
    pgMajor: o.pgMajor,
    walSegmentSize: spec.postgres.walSegmentSize ?? 16,
    // A publication needs logical decoding of the WAL: every node, since any may become the primary.
    settings:
      spec.logical.publications.length > 0 ? { wal_level: 'logical', ...spec.settings } : spec.settings,
    synchronousStandbyNames: '',
    upstream: undefined,
    tls: undefined,
    archive: undefined,
  };
  return {
    postgresqlConf: renderPostgresqlConf(input),
    pgHba: renderPgHba({
      node: input.node,
      superuser: spec.superuser.name,
      replicationUser: spec.replication.user,
      replicationSources: [],
      adminSources: ['127.0.0.1'],
      access: [],
      logical: [],
      ssl: false,
      localSuperuser: false,
    }),
    settings: effectiveSettings(input),
  };
}
