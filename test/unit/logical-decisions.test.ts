import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgreplError } from '../../src/errors.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { appendItemText } from '../../src/cluster-spec/edit-yaml-text.js';
import {
  blockingFindings,
  decidePublications,
  decideSubscriptions,
  preflightPublisher,
  preflightSubscriber,
} from '../../src/cluster/decide/decide-logical.js';
import type { NodeSpec } from '../../src/cluster-spec/cluster-spec.js';
import { renderNodeConfig } from '../../src/cluster/decide/render-node-config.js';
import { planUpgrade } from '../../src/cluster/decide/plan-upgrade.js';
import type { DatabaseFacts, SubscriptionState, TableFacts } from '../../src/postgres/logical-queries.js';
import { FACTS } from '../helpers/observation-fixtures.js';

const base =
  'cluster: t\nstateDir: /s\nnodes:\n  - { name: pg1, port: 5001 }\n  - { name: pg2, port: 5002 }\n';
const withLogical = (logical: string, settings = '') => `${base}${settings}logical:\n${logical}`;

const fails = (text: string, message: RegExp) =>
  assert.throws(
    () => parseSpec(text, 'pgrepl.yaml', '/work'),
    (e: unknown) => e instanceof PgreplError && e.code === 'E_SPEC_INVALID' && message.test(e.message),
  );

const table = (name: string, o: Partial<TableFacts> = {}): TableFacts => ({
  table: name,
  kind: 'r',
  hasPrimaryKey: true,
  replicaIdentity: 'd',
  unlogged: false,
  columns: ['id integer', 'note text'],
  ...o,
});

const db = (o: Partial<DatabaseFacts> = {}): DatabaseFacts => ({
  largeObjects: 0,
  sequences: [],
  extensions: ['plpgsql'],
  availableExtensions: ['plpgsql', 'citext'],
  collate: 'C.UTF-8',
  ctype: 'C.UTF-8',
  localeProvider: 'c',
  serverVersionNum: 150000,
  ...o,
});

describe('logical: in the spec', () => {
  it('qualifies tables, resolves a publisher spec and a URL, and sets wal_level logical with a publication', () => {
    const spec = parseSpec(
      withLogical(
        '  publications:\n    - { name: shop, tables: [orders, sales.items], allow: [10.0.0.0/24] }\n' +
          '  subscriptions:\n    - { name: a, publication: shop, from: { spec: ../blue/pgrepl.yaml } }\n' +
          '    - { name: b, database: app, publication: shop, from: { url: "postgres://rep@10.0.0.1:5433,10.0.0.2/app", password: { env: PUB_PW } }, copyData: false }\n',
      ),
      'x',
      '/work/green',
    );
    assert.deepEqual(spec.logical.publications[0]?.tables, ['public.orders', 'sales.items']);
    assert.deepEqual(spec.logical.subscriptions[0]?.from, { kind: 'spec', path: '/work/blue/pgrepl.yaml' });
    assert.deepEqual(spec.logical.subscriptions[1]?.from, {
      kind: 'url',
      hosts: [
        { host: '10.0.0.1', port: 5433 },
        { host: '10.0.0.2', port: 5432 },
      ],
      user: 'rep',
      database: 'app',
      password: { kind: 'env', name: 'PUB_PW' },
    });
    const c = renderNodeConfig(spec, FACTS, spec.nodes[1]!, spec.nodes[0]);
    assert.equal(c.settings['wal_level'], 'logical');
    assert.match(c.pgHba, /^host\s+postgres\s+replicator\s+10\.0\.0\.0\/24\s+scram-sha-256$/m);
    assert.equal(
      renderNodeConfig(parseSpec(base, 'x', '/'), FACTS, spec.nodes[0]!, undefined).settings['wal_level'],
      'replica',
    );
  });

  it('keeps subscribers’ slots across a failover on PostgreSQL 17 publishers: slot synchronization on the standbys, and walsenders behind the standbys', () => {
    const spec = parseSpec(
      withLogical('  publications:\n    - { name: p, database: app, all: true }\n'),
      'x',
      '/',
    );
    const [pg1, pg2] = spec.nodes as [NodeSpec, NodeSpec];
    const v17 = { ...FACTS, pgMajor: 17 };
    const replica = renderNodeConfig(spec, v17, pg2, pg1);
    assert.equal(replica.settings['sync_replication_slots'], 'on');
    assert.equal(replica.settings['hot_standby_feedback'], 'on');
    assert.equal(replica.settings['synchronized_standby_slots'], 'pg1');
    assert.match(
      replica.settings['primary_conninfo'] ?? '',
      / dbname=postgres /,
      'the slot sync worker connects to a database',
    );
    assert.match(replica.pgHba, /^host\s+postgres\s+replicator\s+127\.0\.0\.1\/32\s+scram-sha-256$/m);
    assert.equal(renderNodeConfig(spec, v17, pg1, undefined).settings['synchronized_standby_slots'], 'pg2');
    for (const c of [
      renderNodeConfig(spec, FACTS, pg2, pg1),
      renderNodeConfig(parseSpec(base, 'x', '/'), v17, pg2, pg1),
    ]) {
      assert.equal(
        c.settings['sync_replication_slots'],
        undefined,
        'PostgreSQL 15, or no publication: none of it',
      );
      assert.doesNotMatch(c.settings['primary_conninfo'] ?? '', /dbname/);
    }
  });

  it('refuses both or neither of tables and all, a password in the URL, a name twice, and wal_level replica', () => {
    fails(
      withLogical('  publications:\n    - { name: p, all: true, tables: [a] }\n'),
      /give tables: \[\.\.\.\] or all: true/,
    );
    fails(withLogical('  publications:\n    - { name: p }\n'), /give tables: \[\.\.\.\] or all: true/);
    fails(
      withLogical(
        '  subscriptions:\n    - { name: s, publication: p, from: { url: "postgres://u:pw@h/db", password: { env: X } } }\n',
      ),
      /without a password/,
    );
    fails(
      withLogical('  publications:\n    - { name: p, all: true }\n    - { name: p, tables: [a] }\n'),
      /p is named twice/,
    );
    fails(
      withLogical('  publications:\n    - { name: p, all: true }\n', 'settings: { wal_level: replica }\n'),
      /needs wal_level logical/,
    );
    fails(
      withLogical('  publications:\n    - { name: p, all: true, skipChecks: [everything] }\n'),
      /skipChecks/,
    );
  });
});

describe('the pre-flight check', () => {
  it('finds on the publisher a missing table, no replica identity, unlogged tables, large objects; sequences only warn', () => {
    const found = preflightPublisher(
      ['public.a', 'public.b', 'public.c', 'public.gone'],
      [
        table('public.a'),
        table('public.b', { hasPrimaryKey: false }),
        table('public.c', { unlogged: true, replicaIdentity: 'f', hasPrimaryKey: false }),
      ],
      db({ largeObjects: 2, sequences: ['public.a_id_seq'] }),
    );
    assert.deepEqual(
      found.map((f) => [f.code, f.severity, f.subject]),
      [
        ['missing-table', 'error', 'public.gone'],
        ['no-replica-identity', 'error', 'public.b'],
        ['unlogged', 'error', 'public.c'],
        ['large-objects', 'error', 'pg_largeobject'],
        ['sequences', 'warning', 'public.a_id_seq'],
      ],
    );
    assert.deepEqual(
      blockingFindings(found, ['large-objects', 'missing-table']).map((f) => f.code),
      ['no-replica-identity', 'unlogged'],
    );
  });

  it('finds on the subscriber a missing table, missing or retyped columns, missing extensions, another collation', () => {
    const found = preflightSubscriber(
      [table('public.a'), table('public.b'), table('public.c')],
      db({ extensions: ['plpgsql', 'citext', 'postgis'], collate: 'en_US.UTF-8', ctype: 'en_US.UTF-8' }),
      [
        table('public.a', { columns: ['id integer', 'note text', 'extra int'] }),
        table('public.b', { columns: ['id bigint', 'note text'] }),
      ],
      db(),
    );
    assert.deepEqual(
      found.map((f) => [f.code, f.subject]),
      [
        ['column-mismatch', 'public.b'],
        ['missing-on-subscriber', 'public.c'],
        ['missing-extension', 'citext'],
        ['missing-extension', 'postgis'],
        ['collation', 'database'],
      ],
    );
    const postgis = found.find((f) => f.subject === 'postgis');
    assert.match(postgis?.fix ?? '', /install the package with postgis/);
    assert.equal(found.find((f) => f.subject === 'citext')?.fix, 'CREATE EXTENSION citext on the subscriber');
  });
});

describe('what up does for logical:', () => {
  const pub = {
    name: 'shop',
    database: 'postgres',
    tables: ['public.a', 'public.b'],
    allow: [],
    skipChecks: [],
  };
  const sub = {
    name: 'copy',
    database: 'postgres',
    publication: 'shop',
    from: { kind: 'spec' as const, path: '/x' },
    copyData: true,
    skipChecks: [],
  };

  const subscribed: SubscriptionState = {
    name: 'copy',
    enabled: true,
    publications: ['shop'],
    workerRunning: false,
    receivedLsn: null,
    latestEndLsn: null,
    lastMessageAgeSeconds: null,
    tables: [],
    slotName: 'copy',
  };

  it('creates what is missing, sets what differs, leaves what matches, and says what it cannot change', () => {
    assert.deepEqual(
      decidePublications('pg1', [pub], []).steps.map((s) => s.kind === 'logical' && s.action),
      ['create-publication'],
    );
    assert.deepEqual(
      decidePublications(
        'pg1',
        [pub],
        [{ name: 'shop', allTables: false, tables: ['public.b', 'public.a'].sort() }],
      ).steps,
      [],
    );
    assert.deepEqual(
      decidePublications('pg1', [pub], [{ name: 'shop', allTables: false, tables: ['public.a'] }]).steps.map(
        (s) => s.kind === 'logical' && s.action,
      ),
      ['set-publication-tables'],
    );
    const allNow = decidePublications('pg1', [pub], [{ name: 'shop', allTables: true, tables: [] }]);
    assert.deepEqual(allNow.steps, []);
    assert.match(allNow.notes[0] ?? '', /cannot change that in place/);
    const present = { ...subscribed, enabled: false, publications: ['other'] };
    const d = decideSubscriptions('pg1', [sub], [present]);
    assert.deepEqual(
      d.steps.map((s) => s.kind === 'logical' && s.action),
      ['set-subscription-publication'],
    );
    assert.match(d.notes[0] ?? '', /ALTER SUBSCRIPTION copy ENABLE/);
  });

  it('re-syncs an enabled subscription whose slot the publisher’s primary lacks, and only then', () => {
    const running = subscribed;
    const actions = (present: typeof running, slot: boolean | undefined) =>
      decideSubscriptions(
        'pg1',
        [sub],
        [present],
        new Map(slot === undefined ? [] : [['copy', slot]]),
      ).steps.map((x) => x.kind === 'logical' && x.action);
    assert.deepEqual(actions(running, false), ['resync-subscription']);
    assert.deepEqual(actions(running, true), []);
    assert.deepEqual(actions(running, undefined), [], 'a publisher not read decides nothing');
    assert.deepEqual(actions({ ...running, enabled: false }, false), [], 'a disabled one is the user’s');
  });
});

describe('appending to a list of the spec file', () => {
  it('adds the section, the list, or an item, leaving every other line as it was', () => {
    const text = '# mine\ncluster: t # name\nnodes:\n  - { name: pg1, port: 5001 }\n';
    const one = appendItemText(text, ['logical', 'publications'], '{ name: a, all: true }');
    assert.equal(one, `${text}logical:\n  publications:\n    - { name: a, all: true }\n`);
    const two = appendItemText(one, ['logical', 'publications'], '{ name: b, all: true }');
    assert.equal(two, `${one}    - { name: b, all: true }\n`);
    const three = appendItemText(two, ['logical', 'subscriptions'], '{ name: c }');
    assert.equal(three, `${two}  subscriptions:\n    - { name: c }\n`);
    const flow = appendItemText('logical:\n  publications: []\n', ['logical', 'publications'], '{ name: a }');
    assert.equal(flow, 'logical:\n  publications: [ { name: a } ]\n');
    const middle = appendItemText(
      'logical:\n  publications:\n    - { name: a }\nnodes: []\n',
      ['logical', 'publications'],
      '{ name: b }',
    );
    assert.equal(middle, 'logical:\n  publications:\n    - { name: a }\n    - { name: b }\nnodes: []\n');
  });
});

describe('the plan of an online upgrade', () => {
  const spec = parseSpec(base, 'x', '/work');
  const input = {
    spec,
    fromMajor: 15,
    to: { binDir: '/pg17/bin', version: '17.7', major: 17 },
    newExtensions: ['plpgsql', 'citext'],
    portOffset: 100,
    databases: [
      {
        name: 'app',
        tables: [table('public.a'), table('public.b', { hasPrimaryKey: false })],
        facts: db({ sequences: ['public.a_id_seq'], extensions: ['plpgsql', 'citext', 'postgis'] }),
        tableBytes: 100 * 2 ** 20,
      },
    ],
    copyMbPerSecond: 50,
  };

  it('puts the new cluster beside on other ports, finds what refuses it per database, and estimates the copy', () => {
    const plan = planUpgrade(input);
    assert.ok(!('refusal' in plan));
    assert.deepEqual(plan.target.nodes, [
      { name: 'pg1', host: '127.0.0.1', port: 5101 },
      { name: 'pg2', host: '127.0.0.1', port: 5102 },
    ]);
    assert.equal(plan.target.stateDir, '/s/upgrade-pg17');
    assert.deepEqual(
      plan.findings.map((f) => [f.code, f.severity, f.database, f.subject]),
      [
        ['no-replica-identity', 'error', 'app', 'public.b'],
        ['sequences', 'warning', 'app', 'public.a_id_seq'],
        ['missing-extension', 'error', 'app', 'postgis'],
      ],
    );
    assert.match(plan.findings[1]?.message ?? '', /copied exactly at the cutover/);
    assert.equal(plan.blocking, 2);
    assert.equal(plan.copySeconds, 2);
  });

  it('refuses an older or equal version, and ports the cluster already uses', () => {
    assert.match(
      (planUpgrade({ ...input, to: { ...input.to, major: 15, version: '15.4' } }) as { refusal: string })
        .refusal,
      /not newer than the cluster's 15/,
    );
    assert.match(
      (planUpgrade({ ...input, portOffset: 1 }) as { refusal: string }).refusal,
      /port 5002 of the new pg1 is one the cluster uses/,
    );
  });
});
