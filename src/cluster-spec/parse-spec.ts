import { isAbsolute, join, resolve } from 'node:path';
import { LineCounter, parseDocument, isNode, visit } from 'yaml';
import type { Document } from 'yaml';
import { PgreplError } from '../errors.js';
import type {
  BackupRepo,
  ClusterSpec,
  LogicalSpec,
  NodeSpec,
  PublisherSpec,
  SecretRef,
  TlsMode,
} from './cluster-spec.js';
import { isLoopbackHost } from './loopback-host.js';
import { timingsProblem } from './ha-profiles.js';
import { haTimings, resolveHa } from './resolve-ha.js';
import { dataDirOverlaps, within } from './data-dir-overlaps.js';
import { ARCHIVE_SETTINGS, RESERVED_SETTINGS } from './reserved-settings.js';
import { backupSocketDir } from './backup-paths.js';
import { specSchema } from './schema.js';
import type { ParsedSpec, PasswordSource } from './schema.js';

type Path = readonly (string | number)[];

/** A problem found in the spec, placed at the key it concerns. */
export interface Problem {
  path: Path;
  message: string;
}

/** Parses spec text; `source` names it in errors and `baseDir` anchors relative paths. */
export function parseSpec(text: string, source: string, baseDir: string): ClusterSpec {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const syntax = doc.errors[0];
  if (syntax) {
    const pos = lines.linePos(syntax.pos[0]);
    throw new PgreplError(
      'E_SPEC_SYNTAX',
      `${source}:${pos.line}:${pos.col}: not valid YAML: ${syntax.message.split('\n')[0]}`,
    );
  }
  const parsed = specSchema.safeParse(toJs(doc, lines, source) ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => ({ path: i.path as Path, message: describeIssue(i) }));
    throw invalid(source, doc, lines, problems);
  }
  const problems = checkConsistency(parsed.data, baseDir);
  if (problems.length > 0) throw invalid(source, doc, lines, problems);
  return resolveSpec(parsed.data, source, baseDir);
}

/**
 * The document's value. yaml reports an alias to an anchor that does not exist (`*x`) only here,
 * by throwing: it becomes E_SPEC_SYNTAX at the first alias, like any other syntax error.
 */
function toJs(doc: Document, lines: LineCounter, source: string): unknown {
  try {
    return doc.toJS();
  } catch (err) {
    let at: number | undefined;
    visit(doc, {
      Alias(_key, node) {
        at ??= node.range?.[0];
      },
    });
    const pos = lines.linePos(at ?? 0);
    throw new PgreplError(
      'E_SPEC_SYNTAX',
      `${source}:${pos.line}:${pos.col}: not valid YAML: ${(err as Error).message.split('\n')[0]}`,
      { cause: err },
    );
  }
}

function describeIssue(issue: { code: string; message: string; path: PropertyKey[] }): string {
  if (issue.code === 'unrecognized_keys')
    return `${issue.message}; see \`pgrepl init\` for the keys a spec takes`;
  return issue.message;
}

/** Rules a schema cannot express: uniqueness, directories that overlap, reserved settings. */
function checkConsistency(spec: ParsedSpec, baseDir: string): Problem[] {
  const problems: Problem[] = [];
  const seen = new Map<string, number>();
  spec.nodes.forEach((n, i) => {
    for (const [key, value] of [
      ['name', n.name],
      ['port', `${n.host}:${n.port}`],
    ] as const) {
      const id = `${key}=${value}`;
      const first = seen.get(id);
      if (first !== undefined) {
        problems.push({
          path: ['nodes', i, key],
          message: `${key} ${value} is already used by nodes[${first}]; each node needs its own`,
        });
      } else seen.set(id, i);
    }
  });
  const dirs = spec.nodes.map((n, index) => ({
    index,
    host: n.host,
    dir: resolve(baseDir, n.dataDir ?? join(spec.stateDir, 'data', n.name)),
  }));
  // A repeated name already says it; its default data directory repeats only because of that.
  const renamed = new Set(problems.filter((p) => p.path[2] === 'name').map((p) => p.path[1]));
  for (const d of dataDirOverlaps(dirs, resolve(baseDir, spec.stateDir)))
    if (!(renamed.has(d.index) && spec.nodes[d.index]?.dataDir === undefined))
      problems.push({ path: ['nodes', d.index, 'dataDir'], message: d.message });
  for (const name of Object.keys(spec.settings)) {
    const why = RESERVED_SETTINGS[name];
    if (why !== undefined)
      problems.push({ path: ['settings', name], message: `${name} cannot be set here: ${why}` });
  }
  if (spec.superuser.name === spec.replication.user) {
    problems.push({
      path: ['replication', 'user'],
      message: `the replication user must not be the superuser (${spec.superuser.name}): it gets only LOGIN REPLICATION and its own password`,
    });
  }
  if (spec.replication.mode !== 'async' && spec.replication.syncCount > spec.nodes.length - 1) {
    problems.push({
      path: ['replication', 'syncCount'],
      message: `${spec.replication.mode} mode with syncCount ${spec.replication.syncCount} needs that many replicas, and the spec has ${spec.nodes.length - 1}; writes would wait forever`,
    });
  }
  problems.push(
    ...haProblems(spec),
    ...tlsProblems(spec),
    ...backupProblems(spec, baseDir),
    ...logicalProblems(spec),
  );
  if (String(spec.settings['wal_level'] ?? 'replica') === 'minimal') {
    problems.push({
      path: ['settings', 'wal_level'],
      message: 'wal_level minimal cannot stream to replicas; use replica or logical',
    });
  }
  return problems;
}

/** Settings the backup section owns; a repository that no data directory holds; a socket path that fits. */
function backupProblems(spec: ParsedSpec, baseDir: string): Problem[] {
  if (!spec.backup) return [];
  const problems: Problem[] = [];
  for (const name of ARCHIVE_SETTINGS)
    if (name in spec.settings)
      problems.push({
        path: ['settings', name],
        message: `${name} cannot be set here while backup: is set: pgrepl points it at pgBackRest`,
      });
  const stateDir = resolve(baseDir, spec.stateDir);
  const given = spec.backup.repo;
  const repo =
    given === undefined
      ? resolve(baseDir, spec.stateDir, 'backup', 'repo')
      : given.path !== undefined
        ? resolve(baseDir, given.path)
        : null;
  const holder = spec.nodes.find((n) => {
    if (repo === null) return false;
    const dir = resolve(baseDir, n.dataDir ?? join(spec.stateDir, 'data', n.name));
    return within(repo, dir) || within(dir, repo);
  });
  if (holder)
    problems.push({
      path: ['backup', 'repo', 'path'],
      message: `the repository overlaps ${holder.name}'s data directory; a clone or a restore there would copy or delete the backups: put it elsewhere`,
    });
  // PostgreSQL refuses to start when its socket's path passes sizeof(sun_path) - 1 bytes.
  const socket = join(backupSocketDir(stateDir), '.s.PGSQL.65535');
  if (Buffer.byteLength(socket) > 107)
    problems.push({
      path: ['stateDir'],
      message: `with backup: set, the nodes listen on a unix socket for pgBackRest under the state dir, and ${socket} is longer than the 107 bytes a socket path may have: use a shorter stateDir`,
    });
  return problems;
}

/** Names that identify one publication or subscription each; a wal_level that can decode. */
function logicalProblems(spec: ParsedSpec): Problem[] {
  const l = spec.logical;
  if (!l) return [];
  const problems: Problem[] = [];
  const twice = (list: readonly { name: string; database: string }[], key: string) =>
    list.forEach((x, i) => {
      if (list.findIndex((y) => y.name === x.name && y.database === x.database) !== i)
        problems.push({
          path: ['logical', key, i, 'name'],
          message: `${x.name} is named twice in database ${x.database}`,
        });
    });
  twice(l.publications, 'publications');
  twice(l.subscriptions, 'subscriptions');
  const level = spec.settings['wal_level'];
  if (l.publications.length > 0 && level !== undefined && level !== 'logical')
    problems.push({
      path: ['settings', 'wal_level'],
      message: `a publication needs wal_level logical, not ${String(level)}: remove the setting (pgrepl sets logical)`,
    });
  return problems;
}

/** Files for every node or none, and never files with `tls: off` or `tls: auto`. */
function tlsProblems(spec: ParsedSpec): Problem[] {
  const given = spec.nodes.filter((n) => n.tls).length;
  if (given === 0) return [];
  if (spec.tls !== undefined)
    return [
      {
        path: ['tls'],
        message: `the nodes give their own certificates (nodes[].tls), which ${spec.tls === 'off' ? 'contradicts tls: off' : 'tls: auto would replace'}; remove this key or the nodes' tls`,
      },
    ];
  return spec.nodes.flatMap((n, i) =>
    n.tls
      ? []
      : [
          {
            path: ['nodes', i],
            message: `${n.name} has no tls while other nodes do: give every node its certificate, key and CA`,
          },
        ],
  );
}

/** The agents' timings and API ports: each must leave a leader time to renew, each port free. */
function haProblems(spec: ParsedSpec): Problem[] {
  if (!spec.ha) return [];
  const problems: Problem[] = [];
  const why = timingsProblem(haTimings(spec.ha));
  if (why) problems.push({ path: ['ha', 'ttl'], message: why });
  const plain = spec.ha.etcd?.find((u) => u.startsWith('http://'));
  for (const key of ['etcdTls', 'etcdUser'] as const)
    if (spec.ha[key] && (plain || !spec.ha.etcd))
      problems.push({
        path: ['ha', key],
        message: `${key === 'etcdUser' ? "an etcd user's password is sent" : 'TLS is used'} over https:// only, and ${plain ? `ha.etcd lists ${plain}` : 'ha.etcd lists no endpoint (the loopback etcd of `up --ha` speaks http://)'}; list https:// endpoints`,
      });
  const taken = new Set(spec.nodes.map((n) => `${n.host}:${n.port}`));
  spec.nodes.forEach((n, i) => {
    const api = n.port + spec.ha!.apiPortOffset;
    if (api > 65535 || taken.has(`${n.host}:${api}`))
      problems.push({
        path: ['ha', 'apiPortOffset'],
        message: `${n.name}'s agent API would listen on ${api}, ${api > 65535 ? 'which is no port' : `the port of another node`}; pick another apiPortOffset`,
      });
    else taken.add(`${n.host}:${api}`);
    if (i === 0 && spec.nodes.every((m) => m.noFailover || m.failoverPriority === 0))
      problems.push({
        path: ['nodes'],
        message:
          'with ha set, at least one node must be allowed to be promoted (noFailover false, failoverPriority > 0)',
      });
  });
  return problems;
}

/**
 * The E_SPEC_INVALID error for problems found once the spec was parsed (the server binary rejects
 * a setting), each placed at its key in the spec's text.
 */
export function specProblemsError(text: string, source: string, problems: Problem[]): PgreplError {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  return invalid(source, doc, lines, problems);
}

function invalid(source: string, doc: Document, lines: LineCounter, problems: Problem[]): PgreplError {
  const text = problems
    .map((p) => {
      const where = locate(doc, lines, p.path);
      const key = p.path.length > 0 ? p.path.join('.') : '(top level)';
      return `${source}:${where}: ${key}: ${p.message}`;
    })
    .join('\n');
  return new PgreplError('E_SPEC_INVALID', `invalid spec, nothing was changed:\n${text}`);
}

/** The line:col of the deepest part of `path` that exists in the document. */
function locate(doc: Document, lines: LineCounter, path: Path): string {
  for (let depth = path.length; depth >= 0; depth--) {
    const prefix = path.slice(0, depth);
    const node = prefix.length === 0 ? doc.contents : doc.getIn(prefix, true);
    if (isNode(node) && node.range) {
      const pos = lines.linePos(node.range[0]);
      return `${pos.line}:${pos.col}`;
    }
  }
  return '1:1';
}

function resolveSpec(p: ParsedSpec, source: string, baseDir: string): ClusterSpec {
  const abs = (path: string) => (isAbsolute(path) ? path : resolve(baseDir, path));
  const stateDir = abs(p.stateDir);
  const given = (src: PasswordSource): SecretRef =>
    'env' in src ? { kind: 'env', name: src.env } : { kind: 'file', path: abs(src.file) };
  const secret = (src: PasswordSource | undefined, generatedName: string): SecretRef =>
    src === undefined ? { kind: 'generated', path: join(stateDir, 'secrets', generatedName) } : given(src);
  const nodes: NodeSpec[] = p.nodes.map((n) =>
    Object.freeze({
      name: n.name,
      host: n.host,
      port: n.port,
      dataDir: abs(n.dataDir ?? join(p.stateDir, 'data', n.name)),
      failoverPriority: n.failoverPriority,
      noFailover: n.noFailover,
      tls: n.tls && Object.freeze({ ca: abs(n.tls.ca), cert: abs(n.tls.cert), key: abs(n.tls.key) }),
    }),
  );
  const settings = Object.fromEntries(Object.entries(p.settings).map(([k, v]) => [k, formatSetting(v)]));
  return Object.freeze({
    cluster: p.cluster,
    source,
    stateDir,
    postgres: Object.freeze({
      binDir: p.postgres.binDir === undefined ? undefined : abs(p.postgres.binDir),
      osUser: p.postgres.osUser,
      walSegmentSize: p.postgres.walSegmentSize,
    }),
    superuser: Object.freeze({
      name: p.superuser.name,
      password: secret(p.superuser.password, 'superuser.password'),
    }),
    replication: Object.freeze({
      user: p.replication.user,
      password: secret(p.replication.password, 'replication.password'),
      mode: p.replication.mode,
      syncCount: p.replication.syncCount,
    }),
    settings: Object.freeze(settings),
    access: Object.freeze(p.access.map((a) => Object.freeze({ ...a }))),
    tls: tlsMode(p),
    ha: p.ha ? resolveHa(p.ha, { path: abs, secret: given }) : undefined,
    backup: p.backup
      ? Object.freeze({
          repo: backupRepo(p.backup.repo, { path: abs, secret: given, stateDir }),
          retentionFull: p.backup.retention.full,
          retentionDiff: p.backup.retention.diff,
          fromReplica: p.backup.fromReplica,
          clone: p.backup.clone,
          schedule: Object.freeze({ ...p.backup.schedule }),
        })
      : undefined,
    logical: resolveLogical(p.logical, { path: abs, secret: given }),
    nodes: Object.freeze(nodes),
  });
}

/** Publications with schema-qualified tables; subscriptions with their publisher resolved. */
function resolveLogical(
  l: ParsedSpec['logical'],
  o: { path: (p: string) => string; secret: (s: PasswordSource) => SecretRef },
): LogicalSpec {
  const qualified = (t: string) => (t.includes('.') ? t : `public.${t}`);
  return Object.freeze({
    publications: Object.freeze(
      (l?.publications ?? []).map((p) =>
        Object.freeze({
          name: p.name,
          database: p.database,
          tables: p.tables === undefined ? ('all' as const) : Object.freeze(p.tables.map(qualified)),
          allow: Object.freeze([...p.allow]),
          skipChecks: Object.freeze([...p.skipChecks]),
        }),
      ),
    ),
    subscriptions: Object.freeze(
      (l?.subscriptions ?? []).map((sub) =>
        Object.freeze({
          name: sub.name,
          database: sub.database,
          publication: sub.publication,
          from:
            'spec' in sub.from
              ? { kind: 'spec' as const, path: o.path(sub.from.spec) }
              : publisherUrl(sub.from.url, o.secret(sub.from.password)),
          copyData: sub.copyData,
          skipChecks: Object.freeze([...sub.skipChecks]),
        }),
      ),
    ),
  });
}

/** postgres://USER@HOST:PORT[,HOST:PORT...]/DATABASE as hosts (port 5432 when not given), user and database. */
function publisherUrl(url: string, password: SecretRef): PublisherSpec {
  const m = /^postgres(?:ql)?:\/\/([^:@/]+)@([^/]+)\/(.+)$/.exec(url);
  if (!m) throw new Error(`the schema let through a URL it should have refused: ${url}`);
  const [, user, hostList, database] = m as unknown as [string, string, string, string];
  const hosts = hostList.split(',').map((hp) => {
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(hp);
    const [host, port] = bracketed ? [bracketed[1]!, bracketed[2]] : (hp.split(':') as [string, string?]);
    return { host, port: port === undefined ? 5432 : Number(port) };
  });
  return {
    kind: 'url',
    hosts,
    user: decodeURIComponent(user),
    database: decodeURIComponent(database),
    password,
  };
}

/** The spec's repository; omitted: a directory under the state dir, which pgrepl makes. */
function backupRepo(
  repo: NonNullable<ParsedSpec['backup']>['repo'],
  o: { path: (p: string) => string; secret: (s: PasswordSource) => SecretRef; stateDir: string },
): BackupRepo {
  if (repo === undefined) return { kind: 'posix', path: join(o.stateDir, 'backup', 'repo'), given: false };
  const s3 = repo.s3;
  if (s3 === undefined) return { kind: 'posix', path: o.path(repo.path ?? ''), given: true };
  return Object.freeze({
    kind: 's3',
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    region: s3.region,
    port: s3.port,
    path: s3.path,
    uriStyle: s3.uriStyle,
    caFile: s3.caFile === undefined ? undefined : o.path(s3.caFile),
    key: o.secret(s3.key),
    secret: o.secret(s3.secret),
  });
}

/** Files given per node; else what the spec says; else TLS whenever a node is reached over a network. */
function tlsMode(p: ParsedSpec): TlsMode {
  if (p.nodes.some((n) => n.tls)) return 'files';
  if (p.tls) return p.tls;
  return p.nodes.every((n) => isLoopbackHost(n.host)) ? 'off' : 'auto';
}

function formatSetting(v: string | number | boolean): string {
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  return String(v);
}
