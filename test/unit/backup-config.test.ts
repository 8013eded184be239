import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { PgreplError } from '../../src/errors.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { renderNodeConfig } from '../../src/cluster/decide/render-node-config.js';
import {
  renderPgbackrestConf,
  renderS3Credentials,
  repoLabel,
} from '../../src/backup/render-pgbackrest-conf.js';
import { parseStanzaInfo } from '../../src/backup/backup-info.js';
import { pgbackrestError } from '../../src/backup/run-pgbackrest.js';
import { cloneSources, decideStanza } from '../../src/cluster/decide/decide-stanza.js';
import { decideRestore, parseRestoreTime } from '../../src/cluster/decide/decide-restore.js';
import { archiveGaps } from '../../src/backup/archive-continuity.js';
import type { Step } from '../../src/cluster/decide/plan-step.js';
import { dueBackup } from '../../src/cluster/decide/decide-backup-schedule.js';
import { Cron } from 'croner';
import { FACTS } from '../helpers/observation-fixtures.js';
import { REPO } from '../helpers/test-cluster.js';

const withBackup = (backup: string, extra = '') =>
  `cluster: t\nstateDir: /s\n${extra}backup: ${backup}\nnodes:\n  - { name: pg1, port: 5001, dataDir: /d/pg1 }\n  - { name: pg2, port: 5002, dataDir: /d/pg2 }\n`;

const fails = (text: string, message: RegExp) =>
  assert.throws(
    () => parseSpec(text, 'pgrepl.yaml', '/work'),
    (e: unknown) => e instanceof PgreplError && e.code === 'E_SPEC_INVALID' && message.test(e.message),
  );

/** `pgbackrest info --output=json` of a stanza with a full and an incremental backup (pgBackRest 2.45). */
const INFO = readFileSync(`${REPO}/test/fixtures/pgbackrest-info.json`, 'utf8');

describe('backup: in the spec', () => {
  it('defaults to a repository under the state dir, two full backups kept, copies from the primary', () => {
    const spec = parseSpec(withBackup('{}'), 'x', '/work');
    assert.deepEqual(spec.backup, {
      repo: { kind: 'posix', path: '/s/backup/repo', given: false },
      retentionFull: 2,
      retentionDiff: undefined,
      fromReplica: false,
      clone: 'primary',
      schedule: {},
    });
    assert.equal(parseSpec(withBackup('{}').replace(/backup: .*\n/, ''), 'x', '/').backup, undefined);
  });

  it('resolves a given repository against the spec directory', () => {
    const spec = parseSpec(
      withBackup('{ repo: { path: bk }, retention: { full: 3, diff: 7 }, fromReplica: true }'),
      'x',
      '/work',
    );
    assert.deepEqual(spec.backup?.repo, { kind: 'posix', path: '/work/bk', given: true });
    assert.equal(spec.backup?.retentionDiff, 7);
    assert.equal(spec.backup?.fromReplica, true);
  });

  it('refuses archive settings of its own, a repository inside a data directory, and unknown keys', () => {
    fails(
      withBackup('{}', 'settings: { archive_command: "cp %p /x" }\n'),
      /settings\.archive_command: archive_command cannot be set here while backup: is set/,
    );
    fails(
      withBackup('{ repo: { path: /d/pg2/bk } }'),
      /backup\.repo\.path: the repository overlaps pg2's data directory/,
    );
    fails(withBackup('{ retention: { full: 0 } }'), /backup\.retention\.full/);
    fails(withBackup('{ s3: {} }'), /unrecognized key/i);
    fails(withBackup('{ repo: { s3: { bucket: b1, region: r } } }'), /backup\.repo\.s3\.endpoint/);
    fails(withBackup('{ repo: {} }'), /backup\.repo: give path: \(a directory\) or s3: \(a bucket\)/);
    fails(withBackup('{ schedule: { full: "every night" } }'), /backup\.schedule\.full: a cron pattern/);
    fails(withBackup('{ schedule: { weekly: "0 3 * * 0" } }'), /unrecognized key/i);
  });

  it('refuses a state dir too long for the socket pgBackRest connects through', () => {
    const long = `/${'x'.repeat(100)}`;
    fails(
      withBackup('{}').replace('stateDir: /s', `stateDir: ${long}`),
      /stateDir: .* longer than the 107 bytes/,
    );
  });
});

const S3 =
  '{ repo: { s3: { bucket: pgrepl-bk, endpoint: minio.internal, region: eu-1, port: 9000, uriStyle: path, caFile: ca.crt, key: { env: S3_KEY }, secret: { file: s3.secret } } } }';

describe('backup: an S3 repository', () => {
  const spec = parseSpec(withBackup(S3), 'x', '/work');

  it('keeps where the keys come from, never the keys, and defaults the path in the bucket', () => {
    assert.deepEqual(spec.backup?.repo, {
      kind: 's3',
      bucket: 'pgrepl-bk',
      endpoint: 'minio.internal',
      region: 'eu-1',
      port: 9000,
      path: '/pgrepl',
      uriStyle: 'path',
      caFile: '/work/ca.crt',
      key: { kind: 'env', name: 'S3_KEY' },
      secret: { kind: 'file', path: '/work/s3.secret' },
    });
  });

  it('refuses an endpoint with a scheme or a port, a relative path, and a repository without keys', () => {
    fails(
      withBackup(S3.replace('minio.internal', 'https://minio.internal')),
      /backup\.repo\.s3\.endpoint: a host name/,
    );
    fails(withBackup(S3.replace('port: 9000,', 'path: bk,')), /backup\.repo\.s3\.path: an absolute path/);
    fails(withBackup(S3.replace(', secret: { file: s3.secret }', '')), /backup\.repo\.s3\.secret/);
  });

  it('renders the bucket in pgbackrest.conf, and the keys only in the include file the archive commands name', () => {
    const conf = renderPgbackrestConf({
      stanza: 't',
      node: 'pg1',
      repo: spec.backup!.repo,
      retentionFull: 2,
      retentionDiff: undefined,
      logDir: '/s/log',
      lockDir: '/s/lock',
      instance: { dataDir: '/d/pg1', port: 5001, socketDir: '/s/sockets', user: 'postgres' },
    });
    for (const line of [
      'repo1-type=s3',
      'repo1-path=/pgrepl',
      'repo1-s3-bucket=pgrepl-bk',
      'repo1-s3-endpoint=minio.internal',
      'repo1-s3-region=eu-1',
      'repo1-s3-uri-style=path',
      'repo1-storage-port=9000',
      'repo1-storage-ca-file=/work/ca.crt',
    ])
      assert.ok(conf.split('\n').includes(line), line);
    assert.doesNotMatch(conf, /s3-key/);
    assert.match(renderS3Credentials('AKID', 's3cr3t'), /^repo1-s3-key=AKID\nrepo1-s3-key-secret=s3cr3t$/m);
    const c = renderNodeConfig(spec, FACTS, spec.nodes[0]!, undefined);
    assert.equal(
      c.settings['archive_command'],
      "pgbackrest --config='/s/backup/conf/pg1.conf' --config-include-path='/s/backup/secret' --stanza=t archive-push %p",
    );
    assert.match(
      c.settings['restore_command'] ?? '',
      /--config-include-path='\/s\/backup\/secret' --stanza=t archive-get/,
    );
    assert.equal(repoLabel(spec.backup!.repo), 's3://pgrepl-bk/pgrepl (minio.internal)');
  });
});

describe('backup: in the rendered configuration', () => {
  const spec = parseSpec(withBackup('{}'), 'x', '/');
  const [pg1, pg2] = spec.nodes as [(typeof spec.nodes)[0], (typeof spec.nodes)[0]];

  it('archives through pgBackRest with the node’s own conf on every node, replicas too', () => {
    for (const [node, upstream] of [
      [pg1, undefined],
      [pg2, pg1],
    ] as const) {
      const c = renderNodeConfig(spec, FACTS, node, upstream);
      assert.equal(c.settings['archive_mode'], 'on');
      assert.equal(
        c.settings['archive_command'],
        `pgbackrest --config='/s/backup/conf/${node.name}.conf' --stanza=t archive-push %p`,
      );
      assert.equal(
        c.settings['restore_command'],
        `pgbackrest --config='/s/backup/conf/${node.name}.conf' --stanza=t archive-get %f "%p"`,
      );
      assert.equal(c.settings['unix_socket_directories'], '/s/sockets');
      assert.equal(c.settings['archive_timeout'], '5min');
      assert.match(c.pgHba, /^local\s+all\s+postgres\s+scram-sha-256$/m);
      assert.doesNotMatch(c.pgHba, /trust|peer/);
    }
  });

  it('leaves a cluster without backup: with no archive and no socket', () => {
    const plain = parseSpec(withBackup('{}').replace(/backup: .*\n/, ''), 'x', '/');
    const c = renderNodeConfig(plain, FACTS, plain.nodes[0]!, undefined);
    assert.equal(c.settings['archive_mode'], undefined);
    assert.equal(c.settings['unix_socket_directories'], '');
    assert.doesNotMatch(c.pgHba, /^local/m);
  });

  it('renders pgbackrest.conf with the repository, retention and the node as pg1, and no secret', () => {
    const conf = renderPgbackrestConf({
      stanza: 't',
      node: 'pg2',
      repo: { kind: 'posix', path: '/r', given: true },
      retentionFull: 3,
      retentionDiff: 6,
      logDir: '/s/log',
      lockDir: '/s/lock',
      instance: { dataDir: '/d/pg2', port: 5002, socketDir: '/s/sockets', user: 'postgres' },
    });
    for (const line of [
      '[global]',
      'repo1-path=/r',
      'repo1-retention-full=3',
      'repo1-retention-diff=6',
      'log-path=/s/log',
      'lock-path=/s/lock',
      '[t]',
      'pg1-path=/d/pg2',
      'pg1-port=5002',
      'pg1-socket-path=/s/sockets',
      'pg1-user=postgres',
    ])
      assert.ok(conf.split('\n').includes(line), line);
    assert.doesNotMatch(conf, /pass|key/i);
  });
});

describe('the repository as pgBackRest reports it', () => {
  it('reads backups, the archive range and a 64-bit system id exactly', () => {
    const info = parseStanzaInfo(INFO, 'demo');
    assert.equal(info.status, 'ok');
    assert.deepEqual(info.systemIds, ['7716557497369492177']);
    assert.deepEqual(
      info.backups.map((b) => [b.label, b.type, b.prior]),
      [
        ['20261207-134414F', 'full', null],
        ['20261207-134414F_20261207-134420I', 'incr', '20261207-134414F'],
      ],
    );
    assert.equal(info.backups[0]?.walStart, '000000010000000000000002');
    assert.equal(info.backups[0]?.lsnStop, '0/3000050');
    assert.equal(info.archive[0]?.min, '000000010000000000000001');
  });

  it('tells a missing stanza from an unreadable repository', () => {
    const missing = `[{"archive":[],"backup":[],"db":[],"name":"t","repo":[{"key":1,"status":{"code":1,"message":"missing stanza path"}}],"status":{"code":1,"message":"missing stanza path"}}]`;
    assert.equal(parseStanzaInfo(missing, 't').status, 'missing');
    const denied = `[{"archive":[],"backup":[],"db":[],"name":"t","repo":[{"key":1,"status":{"code":99,"message":"[PathOpenError] Permission denied"}}],"status":{"code":99,"message":"other"}}]`;
    const info = parseStanzaInfo(denied, 't');
    assert.equal(info.status, 'error');
    assert.match(info.message, /Permission denied/);
  });

  it('maps pgBackRest error codes to pgrepl codes with what to do', () => {
    const e = pgbackrestError(
      'restore',
      "ERROR: [075]: unable to find backup set with stop time less than '2026'",
      75,
    );
    assert.equal(e.code, 'E_RESTORE_TARGET');
    assert.match(e.message, /unable to find backup set.*\n.*pgrepl backups/);
    assert.equal(pgbackrestError('backup', 'ERROR: [999]: odd', 1).code, 'E_BACKUP_FAILED');
    assert.equal(
      pgbackrestError(
        'stanza-create',
        'ERROR: [028]: backup and archive info files exist but do not match the database',
        28,
      ).code,
      'E_STANZA_MISMATCH',
    );
  });
});

describe('the stanza up makes', () => {
  const info = parseStanzaInfo(INFO, 'demo');
  it('creates a missing one, keeps one of the same database, refuses one of another', () => {
    assert.equal(decideStanza('demo', { ...info, status: 'missing' }, null).kind, 'create');
    assert.equal(decideStanza('demo', info, '7716557497369492177').kind, 'ok');
    const other = decideStanza('demo', info, '7716557497369492178');
    assert.equal(other.kind, 'refuse');
    assert.ok(
      other.kind === 'refuse' && other.code === 'E_STANZA_MISMATCH' && /another database/.test(other.reason),
    );
    // A new cluster (no data yet) never archives into an existing stanza of its name.
    assert.equal(decideStanza('demo', info, null).kind, 'refuse');
    assert.equal(decideStanza('demo', { ...info, status: 'error' }, null).kind, 'refuse');
  });
});

describe('new replicas from the repository (backup.clone)', () => {
  const steps: Step[] = [
    { kind: 'create-slot', node: 'pg1', slot: 'pg2', reason: 'r' },
    { kind: 'clone', node: 'pg2', upstream: 'pg1', reason: 'no data yet' },
  ];
  it('restores the newest backup when asked and there is one, and says why not when there is none', () => {
    assert.deepEqual(cloneSources(steps, 'primary', true).steps, steps);
    const from = cloneSources(steps, 'backup', true).steps.find((s) => s.kind === 'clone');
    assert.equal(from?.kind === 'clone' && from.source, 'repository');
    const none = cloneSources(steps, 'backup', false);
    assert.deepEqual(none.steps, steps);
    assert.match(none.notes[0] ?? '', /no backup yet: pg2 copied from the primary/);
  });
});

describe('a restore target', () => {
  const info = parseStanzaInfo(INFO, 'demo');
  const [full, incr] = info.backups as [(typeof info.backups)[0], (typeof info.backups)[0]];
  const at = (s: number) => ({ kind: 'time' as const, text: 'x', ms: s * 1000 });
  it('starts from the newest backup that ended before it, and names that set to pgBackRest', () => {
    const d = decideRestore(at(incr.stoppedAt + 5), info.backups, Date.now());
    assert.ok(d.ok && d.backup.label === incr.label && d.options.includes(`--set=${incr.label}`));
    const between = decideRestore(at(full.stoppedAt + 1), info.backups, Date.now());
    assert.ok(between.ok && between.backup.label === full.label);
    const lsn = decideRestore({ kind: 'lsn', lsn: full.lsnStop }, info.backups, Date.now());
    assert.ok(lsn.ok && lsn.backup.label === full.label && lsn.options.includes('--type=lsn'));
    const latest = decideRestore({ kind: 'latest' }, info.backups, Date.now());
    assert.ok(latest.ok && latest.backup.label === incr.label);
  });
  it('refuses a time before the first backup ended, one in the future, and an empty repository', () => {
    const early = decideRestore(at(full.stoppedAt - 60), info.backups, Date.now());
    assert.ok(
      !early.ok &&
        early.code === 'E_RESTORE_TARGET' &&
        /before the end of the first backup/.test(early.reason),
    );
    const future = decideRestore(at(Date.now() / 1000 + 3600), info.backups, Date.now());
    assert.ok(!future.ok && /in the future/.test(future.reason));
    const lsn = decideRestore({ kind: 'lsn', lsn: '0/1' }, info.backups, Date.now());
    assert.ok(!lsn.ok && lsn.code === 'E_RESTORE_TARGET');
    const empty = decideRestore({ kind: 'latest' }, [], Date.now());
    assert.ok(!empty.ok && empty.code === 'E_NO_BACKUP');
  });
  it('reads times with their zone only, microseconds kept for PostgreSQL', () => {
    assert.deepEqual(parseRestoreTime('2026-12-07 13:44:18.873093+00'), {
      text: '2026-12-07 13:44:18.873093+00:00',
      ms: Date.parse('2026-12-07T13:44:18.873Z'),
    });
    assert.equal(parseRestoreTime('2026-12-07T13:44:18Z')?.ms, Date.parse('2026-12-07T13:44:18Z'));
    assert.equal(parseRestoreTime('2026-12-07 10:44-03:00')?.ms, Date.parse('2026-12-07T13:44:00Z'));
    assert.equal(parseRestoreTime('2026-12-07 13:44:18'), null);
    assert.equal(parseRestoreTime('yesterday'), null);
  });
});

describe("the archive's continuity", () => {
  const f = (name: string) => `15-1/${name.slice(0, 16)}/${name}-${'a'.repeat(40)}.lz4`;
  const MB16 = 16 * 1024 * 1024;
  it('finds the segments missing after the oldest backup began, whatever their timeline', () => {
    const files = [
      f('000000010000000000000002'),
      f('000000010000000000000003'),
      // 4 and 5 lost; the promotion's .partial does not count, timeline 2 goes on from 6.
      `15-1/0000000100000000/000000010000000000000006.partial-${'b'.repeat(40)}.lz4`,
      f('000000020000000000000006'),
      f('000000020000000000000007'),
      '15-1/00000002.history',
    ];
    assert.deepEqual(archiveGaps(files, '000000010000000000000002', MB16), [
      { fromLsn: '0/4000000', toLsn: '0/6000000', segments: 2 },
    ]);
    assert.deepEqual(
      archiveGaps(
        files.filter((x) => !x.includes('00000003-')),
        '000000010000000000000006',
        MB16,
      ),
      [],
    );
  });
  it('counts segment numbers across a log file boundary', () => {
    assert.deepEqual(
      archiveGaps(
        [f('0000000100000000000000FF'), f('000000010000000100000001')],
        '0000000100000000000000FF',
        MB16,
      ),
      [{ fromLsn: '1/0', toLsn: '1/1000000', segments: 1 }],
    );
  });
});

describe('the backup schedule the leader keeps', () => {
  const nextRun = (p: string, from: number) =>
    new Cron(p, { paused: true }).nextRun(new Date(from))?.getTime() ?? null;
  const T = Date.parse('2026-12-07T02:59:00Z');
  const schedule = { full: '0 3 * * 0', incr: '0 * * * *' };
  it('runs nothing before the first time comes, counted from when this leader began', () => {
    assert.equal(dueBackup(schedule, {}, { now: T, since: T - 60_000, nextRun }), null);
  });
  it('runs a type once its time came after it last ended, the larger first, covering the smaller', () => {
    const sunday3am = Date.parse('2026-12-06T03:00:30Z');
    const due = dueBackup(
      schedule,
      { full: sunday3am - 7 * 86_400_000, incr: sunday3am - 3_600_000 },
      {
        now: sunday3am,
        since: 0,
        nextRun,
      },
    );
    assert.equal(due?.type, 'full');
    assert.deepEqual(due?.covers, ['full', 'incr']);
    const hourly = dueBackup(
      schedule,
      { full: sunday3am, incr: sunday3am - 3_000_000 },
      {
        now: sunday3am + 3_600_000,
        since: 0,
        nextRun,
      },
    );
    assert.deepEqual([hourly?.type, hourly?.covers], ['incr', ['incr']]);
    assert.match(hourly?.reason ?? '', /incr backups run at "0 \* \* \* \*"/);
    assert.equal(
      dueBackup(
        schedule,
        { full: sunday3am, incr: sunday3am },
        { now: sunday3am + 60_000, since: 0, nextRun },
      ),
      null,
    );
    assert.equal(dueBackup({}, {}, { now: sunday3am, since: 0, nextRun }), null);
  });
});
