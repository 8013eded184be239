import type { PreflightCode } from './preflight-codes.js';
/** Where a secret comes from, resolved: an env var, a user file, or a file pgrepl generates once (0600). */
export type SecretRef =
  { kind: 'env'; name: string } | { kind: 'file'; path: string } | { kind: 'generated'; path: string };

export type ReplicationMode = 'async' | 'sync' | 'quorum';

/** One PostgreSQL instance pgrepl manages. Paths are absolute. */
export interface NodeSpec {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** Among equally advanced replicas the agents promote the higher; 0: never automatically. */
  readonly failoverPriority: number;
  /** The agents never promote it. */
  readonly noFailover: boolean;
  /** Its certificate, key and trusted CA, when the spec gives them (`tls` mode `files`). */
  readonly tls: TlsFiles | undefined;
}

/** A node's TLS files: its certificate and key, and the CA it checks the other nodes against. Absolute paths. */
export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * How the nodes' connections are encrypted. off: not at all. auto: pgrepl keeps a CA and each node's
 * certificate. files: each node's files are given in the spec. With TLS, every rule in pg_hba is
 * `hostssl` and every connection between the nodes and from pgrepl checks the server's certificate
 * and host name (sslmode=verify-full).
 */
export type TlsMode = 'off' | 'auto' | 'files';

/** The timings of the agents, as a profile gives them or the spec overrides them. */
export interface HaTimings {
  /** The leader key's lease: how long a silent leader keeps the key. Whole seconds (etcd's unit). */
  readonly ttlSeconds: number;
  /** How often an agent looks and renews when nothing happens. */
  readonly loopWaitMs: number;
  /** How long one etcd request may take, over every endpoint. */
  readonly retryTimeoutMs: number;
}

/** Automatic failover through `pgrepl agent` on every node. */
export interface HaSpec extends HaTimings {
  /** etcd client URLs; undefined: `up --ha` runs a single-member etcd on loopback. */
  readonly etcd: readonly string[] | undefined;
  /** For https:// endpoints: the CA etcd's certificate is checked against, and a client certificate (absolute paths). */
  readonly etcdTls: { readonly ca: string; readonly cert?: string; readonly key?: string } | undefined;
  /** An etcd user, for an etcd with auth enabled. */
  readonly etcdUser: { readonly name: string; readonly password: SecretRef } | undefined;
  readonly profile: 'default' | 'fast';
  /** A replica further behind the last leader position than this (bytes) is never promoted. */
  readonly maximumLagOnFailover: number;
  /** Each agent's HTTP API listens on its node's host, at the node's port plus this. */
  readonly apiPortOffset: number;
  /**
   * Patroni's failsafe mode: while etcd does not answer, the leader keeps its primary writable only
   * as long as every other node's agent confirms, over its API, that it sees no other leader and
   * will not promote; without it the leader stops writes before its lease could run out.
   */
  readonly failsafe: boolean;
}

/** One pg_hba rule for applications; the method is always scram-sha-256. */
export interface AccessRule {
  readonly cidr: string;
  readonly database: string;
  readonly user: string;
}

/** Cron patterns per backup type; a type without one is not scheduled. */
export type BackupSchedule = Readonly<Partial<Record<'full' | 'diff' | 'incr', string>>>;

/** A repository in a directory on the machine that runs the nodes. */
export interface PosixRepo {
  readonly kind: 'posix';
  /** Absolute. */
  readonly path: string;
  /** The spec names the repository (else it is the state dir's, which pgrepl makes). */
  readonly given: boolean;
}

/** A repository in an S3 bucket, reached over TLS; the keys are read from their sources, never stored in the spec. */
export interface S3Repo {
  readonly kind: 's3';
  readonly bucket: string;
  readonly endpoint: string;
  readonly region: string;
  readonly port: number | undefined;
  /** Where in the bucket (absolute). */
  readonly path: string;
  readonly uriStyle: 'host' | 'path';
  readonly caFile: string | undefined;
  readonly key: SecretRef;
  readonly secret: SecretRef;
}

export type BackupRepo = PosixRepo | S3Repo;

/** Base backups and the WAL archive, kept by pgBackRest in one repository under the cluster's stanza. */
export interface BackupSpec {
  readonly repo: BackupRepo;
  /** Full backups kept (repo1-retention-full); older ones, and the WAL only they need, expire. */
  readonly retentionFull: number;
  /** Differential backups kept (repo1-retention-diff); undefined: pgBackRest's default. */
  readonly retentionDiff: number | undefined;
  /** Copy the files from a streaming replica (pgBackRest's backup-standby). */
  readonly fromReplica: boolean;
  /** Where a new replica is copied from: the primary, or the repository's newest backup (no load on the primary). */
  readonly clone: 'primary' | 'backup';
  /** With agents: when the leader's agent takes each type of backup (cron patterns). */
  readonly schedule: BackupSchedule;
}

/** The validated, defaulted, frozen spec handed down to every layer. */
export interface ClusterSpec {
  readonly cluster: string;
  /** The spec file, or `(embedded default)`. */
  readonly source: string;
  readonly stateDir: string;
  readonly postgres: {
    readonly binDir: string | undefined;
    readonly osUser: string;
    /** initdb's --wal-segsize in MB; undefined: PostgreSQL's 16. Read when the primary is made, never after. */
    readonly walSegmentSize: number | undefined;
  };
  readonly superuser: { readonly name: string; readonly password: SecretRef };
  readonly replication: {
    readonly user: string;
    readonly password: SecretRef;
    /** async: no waiting; sync: FIRST syncCount of the replicas; quorum: ANY syncCount of them. */
    readonly mode: ReplicationMode;
    readonly syncCount: number;
  };
  /** postgresql.conf overrides, values as PostgreSQL reads them. */
  readonly settings: Readonly<Record<string, string>>;
  readonly access: readonly AccessRule[];
  readonly tls: TlsMode;
  /** Set: agents fail over automatically (`pgrepl agent`); unset: failover is `pgrepl promote`. */
  readonly ha: HaSpec | undefined;
  /** Set: every node archives its WAL while primary, and `pgrepl backup` takes base backups. */
  readonly backup: BackupSpec | undefined;
  /** Publications and subscriptions; empty lists without a logical: section. */
  readonly logical: LogicalSpec;
  /** The first node is the initial primary. */
  readonly nodes: readonly NodeSpec[];
}

/** A publication: `tables` as schema-qualified names, or 'all' (FOR ALL TABLES). */
export interface PublicationSpec {
  readonly name: string;
  readonly database: string;
  readonly tables: readonly string[] | 'all';
  /** CIDRs subscribers may connect from besides the nodes' own addresses. */
  readonly allow: readonly string[];
  readonly skipChecks: readonly PreflightCode[];
}

/** A publisher: another pgrepl cluster by its spec file (absolute), or hosts and a user with a password source. */
export type PublisherSpec =
  | { readonly kind: 'spec'; readonly path: string }
  | {
      readonly kind: 'url';
      readonly hosts: readonly { readonly host: string; readonly port: number }[];
      readonly user: string;
      readonly database: string;
      readonly password: SecretRef;
    };

export interface SubscriptionSpec {
  readonly name: string;
  readonly database: string;
  readonly publication: string;
  readonly from: PublisherSpec;
  readonly copyData: boolean;
  readonly skipChecks: readonly PreflightCode[];
}

export interface LogicalSpec {
  readonly publications: readonly PublicationSpec[];
  readonly subscriptions: readonly SubscriptionSpec[];
}

/** Looks a node up by name; undefined when the spec has no such node. */
export function findNode(spec: ClusterSpec, name: string): NodeSpec | undefined {
  return spec.nodes.find((n) => n.name === name);
}

/** The databases the spec's publications and subscriptions are in, each once, in spec order. */
export function logicalDatabases(l: LogicalSpec): string[] {
  return [...new Set([...l.publications, ...l.subscriptions].map((x) => x.database))];
}
