import { Cron } from 'croner';
import { z } from 'zod';
import { HA_DEFAULTS } from './resolve-ha.js';
import { PREFLIGHT_CODES } from './preflight-codes.js';

/** Node names double as slot names and application_name, so they follow the slot-name rules. */
const nodeName = z
  .string()
  .regex(
    /^[a-z][a-z0-9_]{0,62}$/,
    'lower-case letters, digits and _, starting with a letter (it names a slot)',
  );

const secretSource = z.union([
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name') }),
  z.strictObject({ file: z.string().min(1) }),
]);

const password = secretSource.describe(
  'where the password comes from: { env: NAME } or { file: PATH }; omitted: generated once',
);

const roleName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a plain lower-case role name');

const settingValue = z.union([z.string(), z.number(), z.boolean()]);

export const nodeSchema = z.strictObject({
  name: nodeName,
  host: z
    .string()
    .min(1)
    .refine((h) => !['0.0.0.0', '::', '*', '[::]'].includes(h), {
      message:
        "the address the node listens on and is reached at; a wildcard like 0.0.0.0 is no address a replica or a client can connect to: give the machine's own address",
    })
    .default('127.0.0.1'),
  port: z.number().int().min(1024).max(65535),
  dataDir: z.string().min(1).optional(),
  failoverPriority: z
    .number()
    .int()
    .min(0)
    .default(1)
    .describe('ties between equally advanced replicas go to the higher; 0: never promoted automatically'),
  noFailover: z
    .boolean()
    .default(false)
    .describe('never promoted by the agents (a reporting or backup replica)'),
  tls: z
    .strictObject({ ca: z.string().min(1), cert: z.string().min(1), key: z.string().min(1) })
    .optional()
    .describe(
      "this node's own certificate and key (its subjectAltName must name its host), and the CA its connections to the other nodes are checked against; given for every node or for none",
    ),
});

const etcdUrl = z
  .string()
  .regex(
    /^https?:\/\/[^/\s]+\/?$/,
    'an etcd client URL, e.g. http://127.0.0.1:2379 or https://10.0.0.11:2379',
  );

/** Automatic failover: the agents, the etcd they agree through, and their timings (seconds). */
export const haSchema = z.strictObject({
  etcd: z
    .array(etcdUrl)
    .min(1)
    .optional()
    .describe('etcd client URLs; omitted: `up --ha` runs one on loopback'),
  etcdTls: z
    .strictObject({
      ca: z.string().min(1),
      cert: z.string().min(1).optional(),
      key: z.string().min(1).optional(),
    })
    .refine((t) => (t.cert === undefined) === (t.key === undefined), 'cert and key go together')
    .optional()
    .describe(
      "for https:// endpoints: the CA file etcd's certificate is checked against, and a client certificate and key (etcd --client-cert-auth)",
    ),
  etcdUser: z
    .strictObject({ name: z.string().min(1), password })
    .optional()
    .describe(
      'an etcd user, for an etcd with auth enabled; its password from { env } or { file }, sent over https:// only',
    ),
  profile: z.enum(['default', 'fast']).default(HA_DEFAULTS.profile),
  ttl: z.number().int().min(1).max(600).optional(),
  loopWait: z.number().positive().max(300).optional(),
  retryTimeout: z.number().positive().max(300).optional(),
  maximumLagOnFailover: z.number().int().min(0).default(HA_DEFAULTS.maximumLagOnFailover),
  apiPortOffset: z
    .number()
    .int()
    .min(1)
    .max(30000)
    .default(HA_DEFAULTS.apiPortOffset)
    .describe("each agent's HTTP API listens on its node's port plus this"),
  failsafe: z
    .boolean()
    .default(HA_DEFAULTS.failsafe)
    .describe(
      'while etcd does not answer, the leader keeps writing as long as every other agent confirms it will not promote',
    ),
});

export const accessRuleSchema = z.strictObject({
  cidr: z
    .string()
    .regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, 'an address with a prefix length, e.g. 10.0.0.0/24 or 127.0.0.1/32'),
  database: z.string().min(1).default('all'),
  user: z.string().min(1).default('all'),
});

/** A cron pattern croner reads: 5 fields (minute first), or 6 with seconds first. */
const cronPattern = z.string().refine(
  (p) => {
    try {
      new Cron(p, { paused: true });
      return true;
    } catch {
      return false;
    }
  },
  {
    message:
      'a cron pattern: 5 fields (minute hour day month weekday), or 6 with seconds first, e.g. "0 3 * * *"',
  },
);

/** A repository in an S3 bucket (AWS, MinIO, Ceph...): what pgBackRest's repo1-s3-* options say. */
const s3RepoSchema = z.strictObject({
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name'),
  endpoint: z
    .string()
    .regex(/^[A-Za-z0-9.-]+$/, 'a host name, without scheme or port (the port goes in port:)')
    .describe("the S3 service's host, e.g. s3.eu-west-1.amazonaws.com or minio.internal"),
  region: z.string().min(1),
  port: z.number().int().min(1).max(65535).optional().describe('omitted: 443'),
  path: z
    .string()
    .regex(/^\/[^\s]*$/, 'an absolute path inside the bucket, e.g. /pgrepl')
    .default('/pgrepl')
    .describe('where in the bucket the repository is; several clusters may share it (one stanza each)'),
  uriStyle: z
    .enum(['host', 'path'])
    .default('host')
    .describe('host: bucket.endpoint (AWS); path: endpoint/bucket (MinIO and most others)'),
  caFile: z
    .string()
    .min(1)
    .optional()
    .describe(
      "the CA that signed the endpoint's certificate, when not a public one (pgBackRest speaks TLS only)",
    ),
  key: secretSource.describe('the access key id: { env: NAME } or { file: PATH }'),
  secret: secretSource.describe('the secret access key: { env: NAME } or { file: PATH } (mode 0600)'),
});

/** Base backups and the WAL archive, through pgBackRest. */
export const backupSchema = z.strictObject({
  repo: z
    .strictObject({ path: z.string().min(1).optional(), s3: s3RepoSchema.optional() })
    .refine((r) => (r.path === undefined) !== (r.s3 === undefined), {
      message: 'give path: (a directory) or s3: (a bucket), one of them',
    })
    .optional()
    .describe(
      "pgBackRest's repository: { path } a directory, or { s3 } a bucket; omitted: backup/repo under the state dir",
    ),
  retention: z
    .strictObject({
      full: z.number().int().min(1).max(9999999).default(2),
      diff: z.number().int().min(1).max(9999999).optional(),
    })
    .default({ full: 2 })
    .describe(
      'how many full (and differential) backups the repository keeps; older ones and their WAL expire',
    ),
  fromReplica: z
    .boolean()
    .default(false)
    .describe('copy the files from a streaming replica (the primary only starts and stops the backup)'),
  schedule: z
    .strictObject({
      full: cronPattern.optional(),
      diff: cronPattern.optional(),
      incr: cronPattern.optional(),
    })
    .optional()
    .describe(
      "with agents, the leader's agent takes these backups when due (cron patterns, 5 fields, or 6 with seconds first); one at a time cluster-wide",
    ),
  clone: z
    .enum(['primary', 'backup'])
    .default('primary')
    .describe(
      'where a new replica is copied from: the primary (pg_basebackup), or the newest backup in the repository',
    ),
});

const sqlName = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a plain lower-case SQL name (letters, digits and _)');

const tableName = z
  .string()
  .regex(
    /^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$/,
    'a table as schema.table (or table, in public), plain lower-case names',
  );

/** Pre-flight findings the user accepts: `up` makes the publication or subscription despite them. */
const skipChecks = z
  .array(z.enum(PREFLIGHT_CODES))
  .default([])
  .describe('pre-flight checks to skip, by code (e.g. large-objects when they are copied apart)');

/** A publication on this cluster's primary: the tables other clusters may subscribe to. */
const publicationSchema = z
  .strictObject({
    name: sqlName,
    database: z.string().min(1).default('postgres'),
    tables: z.array(tableName).min(1).optional().describe('the published tables'),
    all: z.boolean().optional().describe('every table of the database, present and future'),
    allow: z
      .array(accessRuleSchema.shape.cidr)
      .default([])
      .describe("addresses subscribers connect from, beyond the cluster's own nodes"),
    skipChecks: skipChecks,
  })
  .refine((p) => (p.tables === undefined) !== (p.all !== true), {
    message: 'give tables: [...] or all: true, one of them',
  });

/** Where a subscription's publisher is: another pgrepl cluster's spec, or a connection URL. */
const publisherSchema = z.union([
  z.strictObject({
    spec: z.string().min(1).describe("the publishing cluster's pgrepl.yaml (on this machine)"),
  }),
  z.strictObject({
    url: z
      .string()
      .regex(
        /^postgres(ql)?:\/\/[^:@/\s]+@[^/\s]+\/[^\s?]+$/,
        'postgres://USER@HOST:PORT[,HOST:PORT...]/DATABASE, without a password (it goes in password:)',
      ),
    password: secretSource,
  }),
]);

/** A subscription on this cluster's primary to another cluster's publication. */
const subscriptionSchema = z.strictObject({
  name: sqlName,
  database: z.string().min(1).default('postgres'),
  publication: sqlName,
  from: publisherSchema,
  copyData: z
    .boolean()
    .default(true)
    .describe('copy the tables first (false: the subscriber already holds their rows)'),
  skipChecks: skipChecks,
});

/** Publications and subscriptions of logical replication: tables copied between clusters. */
export const logicalSchema = z.strictObject({
  publications: z.array(publicationSchema).default([]),
  subscriptions: z.array(subscriptionSchema).default([]),
});

/** The cluster as the user wants it: the shape of pgrepl.yaml. */
export const specSchema = z.strictObject({
  cluster: z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, - and _'),
  stateDir: z.string().min(1).default('.pgrepl'),
  postgres: z
    .strictObject({
      binDir: z.string().min(1).optional(),
      osUser: z.string().min(1).default('postgres'),
      walSegmentSize: z
        .number()
        .int()
        .refine((n) => n >= 1 && n <= 1024 && (n & (n - 1)) === 0, 'a power of two from 1 to 1024 (MB)')
        .optional(),
    })
    .default({ osUser: 'postgres' }),
  superuser: z
    .strictObject({ name: roleName.default('postgres'), password: password.optional() })
    .default({ name: 'postgres' }),
  replication: z
    .strictObject({
      user: roleName.default('replicator'),
      password: password.optional(),
      mode: z.enum(['async', 'sync', 'quorum']).default('async'),
      syncCount: z.number().int().min(1).default(1),
    })
    .default({ user: 'replicator', mode: 'async', syncCount: 1 }),
  settings: z.record(z.string().regex(/^[a-z_.]+$/, 'a PostgreSQL setting name'), settingValue).default({}),
  access: z.array(accessRuleSchema).default([]),
  tls: z
    .enum(['auto', 'off'])
    .optional()
    .describe(
      "auto: pgrepl makes a CA and each node's certificate under the state dir; off: no TLS. Omitted: auto when a node is on another machine, off when every node is on loopback",
    ),
  ha: haSchema.optional(),
  backup: backupSchema
    .optional()
    .describe('base backups and a WAL archive with pgBackRest; every node archives while it is the primary'),
  logical: logicalSchema
    .optional()
    .describe(
      'logical replication: publications of this cluster (wal_level becomes logical) and subscriptions to others',
    ),
  nodes: z.array(nodeSchema).min(1, 'at least one node (the first one is the initial primary)'),
});

export type SpecInput = z.input<typeof specSchema>;
export type ParsedSpec = z.output<typeof specSchema>;
export type PasswordSource = z.output<typeof password>;
