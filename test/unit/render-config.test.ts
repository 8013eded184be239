import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderNodeConfig } from '../../src/cluster/decide/render-node-config.js';
import { renderPassfile } from '../../src/postgres/render-passfile.js';
import { scramVerifier } from '../../src/postgres/scram-verifier.js';
import { phaseOf } from '../../src/postgres/run-basebackup.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { localPgbackrestPaths } from '../../src/cluster-spec/backup-paths.js';

const spec = parseSpec(
  `cluster: t
tls: off
settings: { shared_buffers: 64MB, application_name: "it's" }
access: [{ cidr: 10.0.0.0/24, database: app, user: app }]
nodes:
  - { name: pg1, port: 5001, dataDir: /d/pg1 }
  - { name: pg2, host: 10.0.0.2, port: 5002, dataDir: /d/pg2 }
`,
  'x',
  '/',
);
const [pg1, pg2] = spec.nodes as [(typeof spec.nodes)[0], (typeof spec.nodes)[0]];
const facts = {
  pgMajor: 15,
  hosts: {
    pg1: {
      connectsFrom: '127.0.0.1',
      replicationPassfile: '/s/repl.pgpass',
      tls: undefined,
      pgbackrest: localPgbackrestPaths('/s', 'pg1'),
    },
    pg2: {
      connectsFrom: '10.0.0.9',
      replicationPassfile: '/s/repl.pgpass',
      tls: undefined,
      pgbackrest: localPgbackrestPaths('/s', 'pg2'),
    },
  },
};

describe('rendered configuration', () => {
  it("gives a replica its own identity, upstream and slot, and the spec's overrides", () => {
    const conf = renderNodeConfig(spec, facts, pg2, pg1).postgresqlConf;
    assert.match(conf, /^listen_addresses = '10\.0\.0\.2'$/m);
    assert.match(conf, /^port = '5002'$/m);
    assert.match(conf, /^cluster_name = 'pg2'$/m);
    assert.match(conf, /^primary_slot_name = 'pg2'$/m);
    assert.match(
      conf,
      /^primary_conninfo = 'host=127\.0\.0\.1 port=5001 user=replicator passfile=\/s\/repl\.pgpass application_name=pg2 connect_timeout=5'$/m,
    );
    assert.match(conf, /^shared_buffers = '64MB'$/m);
    assert.match(conf, /^application_name = 'it''s'$/m, 'quotes are doubled');
    assert.match(conf, /^wal_level = 'replica'$/m);
    assert.match(conf, /^max_slot_wal_keep_size = '2GB'$/m);
    // Slots keep what each node needs; WAL kept beyond that is copied by every pg_rewind.
    assert.match(conf, /^wal_keep_size = '0'$/m);
    assert.doesNotMatch(conf, /password=/);
  });

  it('keeps min_wal_size and max_wal_size at two segments or more, which PostgreSQL requires', () => {
    const sized = (mb: number) =>
      renderNodeConfig(
        parseSpec(
          `cluster: t\npostgres: { walSegmentSize: ${mb} }\nnodes: [{ name: pg1, port: 5001 }]\n`,
          'x',
          '/',
        ),
        facts,
        pg1,
        undefined,
      ).postgresqlConf;
    assert.doesNotMatch(sized(16), /min_wal_size|max_wal_size/, "PostgreSQL's defaults hold");
    assert.doesNotMatch(sized(1), /min_wal_size|max_wal_size/);
    assert.match(sized(64), /^min_wal_size = '128MB'$/m);
    assert.doesNotMatch(sized(64), /max_wal_size/);
    assert.match(sized(1024), /^max_wal_size = '4096MB'$/m);
  });

  it('gives the primary no upstream', () => {
    const conf = renderNodeConfig(spec, facts, pg1, undefined).postgresqlConf;
    assert.doesNotMatch(conf, /primary_conninfo|primary_slot_name/);
  });

  it('admits replication per source address through the replication pseudo-database, SCRAM only', () => {
    const hba = renderNodeConfig(spec, facts, pg1, undefined).pgHba;
    const rules = hba.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.deepEqual(
      rules.map((r) => r.split(/\s+/).join(' ')),
      [
        'host all postgres 127.0.0.1/32 scram-sha-256',
        'host all postgres 10.0.0.9/32 scram-sha-256',
        'host replication replicator 127.0.0.1/32 scram-sha-256',
        'host replication replicator 10.0.0.9/32 scram-sha-256',
        'host app app 10.0.0.0/24 scram-sha-256',
      ],
    );
    assert.doesNotMatch(hba, /trust|md5|^local/m);
  });

  it('escapes passfile fields as libpq reads them', () => {
    assert.equal(
      renderPassfile([{ host: '*', port: '*', database: 'replication', user: 'r', password: 'a:b\\c' }]),
      '*:*:replication:r:a\\:b\\\\c\n',
    );
  });

  it('computes the SCRAM-SHA-256 verifier PostgreSQL stores (independent vector)', () => {
    assert.equal(
      scramVerifier('pencil', Buffer.from(Array.from({ length: 16 }, (_, i) => i))),
      'SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$zHCdol2044/ZyWzPLi7oxApCkamKw9Z+E4U/QApd/5Y=:dd5peBOitVnLNFu7VmwP+HiDaaw4OUCv396eVCWhYiE=',
    );
  });

  it('reads pg_basebackup progress phases, including the checkpoint wait', () => {
    assert.equal(
      phaseOf('pg_basebackup: initiating base backup, waiting for checkpoint to complete'),
      'checkpoint',
    );
    assert.equal(phaseOf('pg_basebackup: checkpoint completed'), 'copying');
    assert.equal(phaseOf('pg_basebackup: write-ahead log end point: 0/2000100'), 'finishing');
    assert.equal(phaseOf('23455/23455 kB (100%), 1/1 tablespace'), undefined);
  });
});
