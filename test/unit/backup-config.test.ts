import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { PgreplError } from '../../src/errors.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { renderNodeConfig } from '../../src/cluster/decide/render-node-config.js';
import { renderPgbackrestConf } from '../../src/backup/render-pgbackrest-conf.js';
import { parseStanzaInfo } from '../../src/backup/backup-info.js';
import { pgbackrestError } from '../../src/backup/run-pgbackrest.js';
import { decideStanza } from '../../src/cluster/decide/decide-stanza.js';
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
      repoPath: '/s/backup/repo',
      repoGiven: false,
      retentionFull: 2,
      retentionDiff: undefined,
      fromReplica: false,
    });
    assert.equal(parseSpec(withBackup('{}').replace(/backup: .*\n/, ''), 'x', '/').backup, undefined);
  });

  it('resolves a given repository against the spec directory', () => {
    const spec = parseSpec(
      withBackup('{ repo: { path: bk }, retention: { full: 3, diff: 7 }, fromReplica: true }'),
      'x',
      '/work',
    );
    assert.equal(spec.backup?.repoPath, '/work/bk');
    assert.equal(spec.backup?.repoGiven, true);
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
  });

  it('refuses a state dir too long for the socket pgBackRest connects through', () => {
    const long = `/${'x'.repeat(100)}`;
    fails(
      withBackup('{}').replace('stateDir: /s', `stateDir: ${long}`),
      /stateDir: .* longer than the 107 bytes/,
    );
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
      repoPath: '/r',
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
