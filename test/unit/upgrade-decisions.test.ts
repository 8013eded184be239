import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { rolesScript, schemaScript } from '../../src/cluster/decide/upgrade-scripts.js';
import { upgradeSpecDocument } from '../../src/cluster/decide/upgrade-spec.js';
import type { UpgradeSpecStage } from '../../src/cluster/decide/upgrade-spec.js';

/** What pg_dump 15.14 and later print around a schema: psql meta-commands, and pgrepl's own objects. */
const DUMP = `--
-- PostgreSQL database dump
--

\\restrict AbC123

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

CREATE TABLE public.events (
    id bigint NOT NULL,
    n integer NOT NULL
);

--
-- Name: pgrepl_upgrade_block_ddl; Type: EVENT TRIGGER; Schema: -; Owner: postgres
--

CREATE EVENT TRIGGER pgrepl_upgrade_block_ddl ON ddl_command_start
   EXECUTE FUNCTION pgrepl_upgrade.block_ddl();


ALTER EVENT TRIGGER pgrepl_upgrade_block_ddl OWNER TO postgres;

CREATE PUBLICATION pgrepl_upgrade FOR ALL TABLES WITH (publish = 'insert, update, delete, truncate');

ALTER PUBLICATION pgrepl_upgrade OWNER TO postgres;

CREATE PUBLICATION shop FOR TABLE ONLY public.events;

\\unrestrict AbC123
`;

describe('online upgrade: what reaches the new cluster (issue 30)', () => {
  it("keeps the schema, and drops psql's meta-commands and the upgrade's own trigger and publication", () => {
    const sql = schemaScript(DUMP);
    assert.doesNotMatch(sql, /^\\/m, 'no meta-command: a driver cannot run them');
    assert.doesNotMatch(sql, /EVENT TRIGGER pgrepl_upgrade_block_ddl/);
    assert.doesNotMatch(sql, /PUBLICATION pgrepl_upgrade\b/);
    assert.match(sql, /CREATE TABLE public\.events \(\n {4}id bigint NOT NULL,\n {4}n integer NOT NULL\n\);/);
    assert.match(sql, /CREATE PUBLICATION shop FOR TABLE ONLY public\.events;/, "a user's publication stays");
  });

  it('creates only the roles the new cluster lacks, and gives every role its attributes and password hash', () => {
    const dump = [
      '\\restrict x',
      'SET default_transaction_read_only = off;',
      'CREATE ROLE app;',
      "ALTER ROLE app WITH NOSUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc';",
      'CREATE ROLE postgres;',
      'ALTER ROLE postgres WITH SUPERUSER LOGIN;',
      'CREATE ROLE "Mixed ""Case""";',
      'CREATE ROLE replicator;',
      '\\unrestrict x',
    ].join('\n');
    assert.equal(
      rolesScript(dump, ['postgres', 'replicator', 'Mixed "Case"']),
      [
        'SET default_transaction_read_only = off;',
        'CREATE ROLE app;',
        "ALTER ROLE app WITH NOSUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc';",
        'ALTER ROLE postgres WITH SUPERUSER LOGIN;',
      ].join('\n'),
    );
  });

  const OLD = `cluster: shop
stateDir: /srv/pgrepl
settings: { work_mem: 64MB }
access:
  - { cidr: 10.0.0.0/24, user: app }
backup:
  repo: { path: /backups }
logical:
  publications:
    - { name: reports, tables: [events] }
    - { name: pgrepl_upgrade, database: postgres, all: true }
nodes:
  - { name: pg1, port: 5432 }
  - { name: pg2, port: 5433, dataDir: /data/pg2 }
`;
  const spec = (stage: UpgradeSpecStage, nodes = ['pg1', 'pg2']) => {
    const doc = upgradeSpecDocument({
      old: parse(OLD) as Record<string, unknown>,
      oldFile: 'pgrepl.yaml',
      cluster: 'shop-pg17',
      stateDir: '/srv/pgrepl/upgrade-pg17',
      binDir: '/opt/pg17/bin',
      portOffset: 100,
      nodes,
      superuser: { kind: 'generated', path: '/srv/pgrepl/secrets/superuser.password' },
      replication: { kind: 'env', name: 'REPL_PASSWORD' },
      databases: ['postgres', 'shop'],
      stage,
    });
    return parseSpec(stringify(doc), '/srv/pgrepl-pg17.yaml', '/srv');
  };

  it("makes the new cluster's spec from the old one: its name, state, binaries and ports; the same passwords, settings and rules; no backups", () => {
    const built = spec('build');
    assert.equal(built.cluster, 'shop-pg17');
    assert.equal(built.stateDir, '/srv/pgrepl/upgrade-pg17');
    assert.equal(built.postgres.binDir, '/opt/pg17/bin');
    assert.deepEqual(
      built.nodes.map((n) => [n.name, n.port, n.dataDir]),
      [
        ['pg1', 5532, '/srv/pgrepl/upgrade-pg17/data/pg1'],
        ['pg2', 5533, '/data/pg2-pg17'],
      ],
    );
    assert.deepEqual(built.superuser.password, {
      kind: 'file',
      path: '/srv/pgrepl/secrets/superuser.password',
    });
    assert.deepEqual(built.replication.password, { kind: 'env', name: 'REPL_PASSWORD' });
    assert.equal(built.settings['work_mem'], '64MB');
    assert.equal(built.access[0]?.user, 'app');
    assert.equal(built.backup, undefined);
    assert.deepEqual(
      spec('build', ['pg1']).nodes.map((n) => n.name),
      ['pg1'],
      'only the nodes asked for',
    );
  });

  it('refuses its clients writes until the cutover, subscribes while it catches up, keeps the way back until the finish', () => {
    const stages = (['build', 'subscribed', 'live', 'finished'] as const).map((stage) => {
      const s = spec(stage);
      return {
        stage,
        readOnly: s.settings['default_transaction_read_only'] ?? null,
        walLevel: s.settings['wal_level'] ?? null,
        publications: s.logical.publications.map((p) => `${p.name}@${p.database}`),
        subscriptions: s.logical.subscriptions.map((x) => `${x.name}@${x.database}<-${x.publication}`),
      };
    });
    assert.deepEqual(stages, [
      { stage: 'build', readOnly: 'on', walLevel: 'logical', publications: [], subscriptions: [] },
      {
        stage: 'subscribed',
        readOnly: 'on',
        walLevel: 'logical',
        publications: ['reports@postgres', 'pgrepl_upgrade@postgres', 'pgrepl_upgrade@shop'],
        subscriptions: ['pgrepl_upgrade_1@postgres<-pgrepl_upgrade', 'pgrepl_upgrade_2@shop<-pgrepl_upgrade'],
      },
      {
        stage: 'live',
        readOnly: null,
        walLevel: 'logical',
        publications: ['reports@postgres', 'pgrepl_upgrade@postgres', 'pgrepl_upgrade@shop'],
        subscriptions: [],
      },
      {
        stage: 'finished',
        readOnly: null,
        walLevel: 'logical',
        publications: ['reports@postgres'],
        subscriptions: [],
      },
    ]);
    const from = spec('subscribed').logical.subscriptions[0]?.from;
    assert.deepEqual(
      from,
      { kind: 'spec', path: '/srv/pgrepl.yaml' },
      'subscribed to the old spec beside it',
    );
  });
});
