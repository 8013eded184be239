import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PgreplError } from '../../errors.js';
import type { CommandRunner } from '../../postgres/command-runner.js';
import { findBinaries, installationStamp } from '../../postgres/find-binaries.js';
import type { InstanceEnv } from '../../postgres/instance-control.js';
import { assertReachable, ensureOwnedDir, writeOwnedFile } from '../../postgres/owned-paths.js';
import { renderPassfile } from '../../postgres/render-passfile.js';
import { resolveRunAs } from '../../postgres/resolve-os-user.js';
import type { SqlTarget } from '../../postgres/sql-client.js';
import type { ClusterSpec, NodeSpec, SecretRef } from '../../cluster-spec/cluster-spec.js';
import { childRecordsDir, recordingRunner } from './child-records.js';
import { readState, recordInstallation } from '../store/cluster-state.js';
import type { ClusterStore } from '../store/cluster-store.js';
import { fileStore } from '../store/file-store.js';
import { systemClock } from './clock.js';
import { ignoreEvents } from './events.js';
import type { EventSink } from './events.js';
import { autoCaFile, resolveNodeHosts } from './node-hosts.js';
import type { NodeHost } from './node-hosts.js';
import type { Clock } from './clock.js';
import { DEFAULT_TIMEOUTS } from './timeouts.js';
import type { Timeouts } from './timeouts.js';
import { resolveSecret } from './resolve-secret.js';

/** Paths under the state dir. */
export interface StatePaths {
  readonly secretsDir: string;
  readonly logsDir: string;
  /** libpq passfile the replicas (walreceiver, pg_basebackup) read the replication password from. */
  readonly replicationPassfile: string;
  /** libpq passfile for `pgrepl psql`. */
  readonly superuserPassfile: string;
}

/** Everything a command needs besides the spec, resolved once at the edge. */
export interface ClusterContext {
  readonly spec: ClusterSpec;
  readonly env: InstanceEnv;
  readonly paths: StatePaths;
  /** Undefined until `up` generates it (a generated secret is created on first `up`), or when it cannot be read. */
  readonly superuserPassword: string | undefined;
  /**
   * Why a password that comes from the environment could not be read (its variable is unset):
   * kept, not thrown, so that commands which need no password (`down`, `destroy`) still work;
   * the first use of that password throws it.
   */
  readonly secretErrors: Readonly<{ superuser?: PgreplError; replication?: PgreplError }>;
  readonly replicationPassword: string | undefined;
  /** Per node name, facts of the host it runs on: whether it is this machine, where it connects from, its passfile. */
  readonly hosts: ReadonlyMap<string, NodeHost>;
  /**
   * Names of the nodes whose host is this machine: only their data directories, files and processes
   * are this command's to read and touch. The others are known by what they answer over the network.
   */
  readonly localNodes: ReadonlySet<string>;
  /** The environment secrets are read from (passed in, never read from globals). */
  readonly processEnv: Readonly<Record<string, string | undefined>>;
  /**
   * Aborted when the user asks pgrepl to stop (SIGINT/SIGTERM): operations stop at their next safe
   * point, between two steps, never half-way through one. Its reason is the signal's name.
   */
  readonly interrupt: AbortSignal | undefined;
  /**
   * Aborted when the step under way must stop at once (the agent lost its lease, or the user asked
   * twice): clones, rewinds and waits end with its reason instead of running to their end.
   */
  readonly abort: AbortSignal | undefined;
  /** The lock, the journal and the fenced nodes, shared by every command on this cluster. */
  readonly store: ClusterStore;
  readonly clock: Clock;
  readonly timeouts: Timeouts;
  /** Where operations tell what they do and decide. */
  readonly events: EventSink;
}

export interface ContextOptions {
  runner: CommandRunner;
  env: Readonly<Record<string, string | undefined>>;
  interrupt?: AbortSignal;
  abort?: AbortSignal;
  clock?: Clock;
  timeouts?: Partial<Timeouts>;
  /** Where the shared state lives; the state dir's files when not given. */
  store?: ClusterStore;
  events?: EventSink;
}

export function statePaths(spec: ClusterSpec): StatePaths {
  const secretsDir = join(spec.stateDir, 'secrets');
  return {
    secretsDir,
    logsDir: join(spec.stateDir, 'logs'),
    replicationPassfile: join(secretsDir, 'replication.pgpass'),
    superuserPassfile: join(secretsDir, 'superuser.pgpass'),
  };
}

/** Resolves binaries, run-as user, secrets and addresses. Reads only: creates nothing. */
export async function buildContext(spec: ClusterSpec, o: ContextOptions): Promise<ClusterContext> {
  const runAs = resolveRunAs(spec.postgres.osUser);
  const paths = statePaths(spec);
  const [bins, hosts] = await Promise.all([
    findBinaries(
      {
        specBinDir: spec.postgres.binDir,
        envBinDir: o.env['PGREPL_PG_BIN'],
        path: o.env['PATH'],
        recorded: readState(spec.stateDir, spec.cluster).installation,
      },
      o.runner,
    ),
    resolveNodeHosts(spec, paths.replicationPassfile, o.runner),
  ]);
  const secretOpts = { env: o.env, create: false, runAs };
  const secretErrors: { superuser?: PgreplError; replication?: PgreplError } = {};
  const read = (ref: SecretRef, what: 'superuser' | 'replication') => {
    try {
      return resolveSecret(ref, what, secretOpts);
    } catch (err) {
      if (!(err instanceof PgreplError && err.code === 'E_SECRET' && ref.kind === 'env')) throw err;
      secretErrors[what] = err;
      return undefined;
    }
  };
  return {
    spec,
    env: { bins, runAs, runner: recordingRunner(o.runner, childRecordsDir(spec.stateDir)) },
    paths,
    superuserPassword: read(spec.superuser.password, 'superuser'),
    replicationPassword: read(spec.replication.password, 'replication'),
    secretErrors,
    hosts,
    localNodes: new Set([...hosts].filter(([, h]) => h.local).map(([name]) => name)),
    processEnv: o.env,
    interrupt: o.interrupt,
    abort: o.abort,
    store: o.store ?? fileStore(spec.stateDir, spec.cluster, runAs),
    clock: o.clock ?? systemClock,
    timeouts: Object.freeze({ ...DEFAULT_TIMEOUTS, ...o.timeouts }),
    events: o.events ?? ignoreEvents,
  };
}

/**
 * Makes the state dir, generated secrets and passfiles exist (0700/0600, owned by the run-as user).
 * Called by `up` only after the plan passed its checks, so a refused `up` leaves nothing behind.
 * An existing passfile of the replicas is rewritten only when the running primary's replication role
 * is known to have the spec's password (`roleHasPassword`): otherwise the role must get it first
 * (the ensure-replication-role step, which then writes the passfile), or every replica that
 * reconnects meanwhile is refused.
 */
export function prepareStateDir(ctx: ClusterContext, o: { roleHasPassword: boolean }): ClusterContext {
  const { spec, paths } = ctx;
  const runAs = ctx.env.runAs;
  const here = spec.nodes.filter((n) => ctx.localNodes.has(n.name));
  for (const p of [spec.stateDir, ...here.map((n) => n.dataDir)]) assertReachable(p, runAs);
  ensureOwnedDir(spec.stateDir, 0o700, runAs);
  ensureOwnedDir(paths.secretsDir, 0o700, runAs);
  ensureOwnedDir(paths.logsDir, 0o700, runAs);
  const secretOpts = { env: ctx.processEnv, create: true, runAs };
  const superuserPassword = resolveSecret(spec.superuser.password, 'superuser', secretOpts) as string;
  const replicationPassword = resolveSecret(spec.replication.password, 'replication', secretOpts) as string;
  const prepared = { ...ctx, superuserPassword, replicationPassword };
  if (o.roleHasPassword || !existsSync(paths.replicationPassfile)) writeReplicationPassfile(prepared);
  writeOwnedFile(
    paths.superuserPassfile,
    renderPassfile([
      { host: '*', port: '*', database: '*', user: spec.superuser.name, password: superuserPassword },
    ]),
    0o600,
    // Owned by the run-as user too: pg_rewind, run as that user, reads it to reach its source.
    runAs,
  );
  return prepared;
}

/** Writes the libpq passfile the replicas (walreceiver, pg_basebackup) read the replication password from. */
export function writeReplicationPassfile(ctx: ClusterContext): void {
  if (ctx.replicationPassword === undefined) return;
  writeOwnedFile(
    ctx.paths.replicationPassfile,
    renderPassfile([
      {
        host: '*',
        port: '*',
        // Streaming names the replication pseudo-database; PostgreSQL 17's slot synchronization
        // on a standby connects to a real one (primary_conninfo's dbname) with the same role.
        database: '*',
        user: ctx.spec.replication.user,
        password: ctx.replicationPassword,
      },
    ]),
    0o600,
    ctx.env.runAs,
  );
}

/**
 * Records in state.json the installation this cluster runs on (by `up`/`start`, once the state dir
 * exists), so that later commands find it without spawning pg_config and postgres --version.
 */
export function rememberInstallation(ctx: ClusterContext): void {
  const { binDir, version } = ctx.env.bins;
  const stamp = installationStamp(binDir);
  if (stamp === null || !existsSync(ctx.spec.stateDir)) return;
  recordInstallation(ctx.spec.stateDir, ctx.spec.cluster, { binDir, version, stamp }, ctx.env.runAs);
}

/** How pgrepl connects to a node as the superuser. */
export function adminTarget(ctx: ClusterContext, node: NodeSpec): SqlTarget | undefined {
  if (ctx.superuserPassword === undefined) return undefined;
  return superuserTarget(ctx, node, ctx.superuserPassword);
}

/** How pgrepl connects to `node` as the superuser with `password`: over TLS when the cluster has it. */
export function superuserTarget(ctx: ClusterContext, node: NodeSpec, password: string): SqlTarget {
  const local = hostOf(ctx, node).local;
  const caFile = trustedCaFile(ctx, node);
  return {
    host: node.host,
    port: node.port,
    user: ctx.spec.superuser.name,
    password,
    label: node.name,
    ...(caFile ? { tls: { caFile, plainIfRefused: local } } : {}),
  };
}

/**
 * The CA file on this machine that `node`'s certificate is checked against (undefined without TLS):
 * with `tls: auto`, the one in the state dir; with the nodes' own files, the CA path of `node` if it
 * is on this machine, else of a node that is, else `node`'s own path.
 */
export function trustedCaFile(ctx: ClusterContext, node: NodeSpec): string | undefined {
  if (ctx.spec.tls === 'off') return undefined;
  if (ctx.spec.tls === 'auto') return autoCaFile(ctx.spec.stateDir);
  if (hostOf(ctx, node).local) return node.tls?.ca;
  return ctx.spec.nodes.find((n) => ctx.localNodes.has(n.name))?.tls?.ca ?? node.tls?.ca;
}

/** The superuser password, or a clear error when the cluster was never brought up. */
export function requireSuperuserPassword(ctx: ClusterContext): string {
  if (ctx.secretErrors.superuser) throw ctx.secretErrors.superuser;
  if (ctx.superuserPassword === undefined) {
    throw new PgreplError(
      'E_SECRET',
      `cluster ${ctx.spec.cluster} has no superuser password yet; run \`pgrepl up\` first`,
    );
  }
  return ctx.superuserPassword;
}

/** The host facts of `node`. */
export function hostOf(ctx: ClusterContext, node: NodeSpec): NodeHost {
  const host = ctx.hosts.get(node.name);
  if (!host) throw new PgreplError('E_UNKNOWN_NODE', `no node named "${node.name}" in ${ctx.spec.source}`);
  return host;
}
