import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveNodeHosts } from '../../src/cluster/context/node-hosts.js';
import { renderNodeConfig } from '../../src/cluster/decide/render-node-config.js';
import { processRunner } from '../../src/postgres/command-runner.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';

// pg1 and pg2 on this machine, pg3 on a host of its own (an address of no interface here; only
// the routing table is asked about the local ones, nothing is sent anywhere).
const spec = parseSpec(
  `cluster: t
stateDir: /s
nodes:
  - { name: pg1, host: 127.0.0.1, port: 5001, dataDir: /d/pg1 }
  - { name: pg2, host: 127.0.0.2, port: 5002, dataDir: /d/pg2 }
  - { name: pg3, host: 10.251.9.3, port: 5432, dataDir: /srv/pg/pg3 }
`,
  'x.yaml',
  '/',
);

describe('per-node host facts (issue 10.10)', () => {
  it('are the facts of each node’s own host, not of the machine running the command', async () => {
    const hosts = await resolveNodeHosts(spec, '/s/secrets/replication.pgpass', processRunner);
    // A node on another host: TLS by default (tls: auto), its files beside its data directory there.
    const inState = (n: string) => ({ ca: '/s/tls/ca.crt', cert: `/s/tls/${n}.crt`, key: `/s/tls/${n}.key` });
    assert.deepEqual(Object.fromEntries(hosts), {
      pg1: {
        local: true,
        connectsFrom: '127.0.0.1',
        replicationPassfile: '/s/secrets/replication.pgpass',
        tls: inState('pg1'),
        pgbackrest: {
          confFile: '/s/backup/conf/pg1.conf',
          socketDir: '/s/sockets',
          logDir: '/s/backup/log',
          lockDir: '/s/backup/lock',
          secretDir: '/s/backup/secret',
        },
      },
      pg2: {
        local: true,
        connectsFrom: '127.0.0.1',
        replicationPassfile: '/s/secrets/replication.pgpass',
        tls: inState('pg2'),
        pgbackrest: {
          confFile: '/s/backup/conf/pg2.conf',
          socketDir: '/s/sockets',
          logDir: '/s/backup/log',
          lockDir: '/s/backup/lock',
          secretDir: '/s/backup/secret',
        },
      },
      pg3: {
        local: false,
        connectsFrom: '10.251.9.3',
        replicationPassfile: '/srv/pg/pg3-replication.pgpass',
        tls: {
          ca: '/srv/pg/pg3-tls/ca.crt',
          cert: '/srv/pg/pg3-tls/pg3.crt',
          key: '/srv/pg/pg3-tls/pg3.key',
        },
        pgbackrest: {
          confFile: '/srv/pg/pg3-pgbackrest/pgbackrest.conf',
          socketDir: '/srv/pg/pg3-pgbackrest/sockets',
          logDir: '/srv/pg/pg3-pgbackrest/log',
          lockDir: '/srv/pg/pg3-pgbackrest/lock',
          secretDir: '/srv/pg/pg3-pgbackrest/secret',
        },
      },
    });
  });

  it('give every node pg_hba rules for where each node connects from, and each replica its own passfile', async () => {
    const facts = {
      pgMajor: 15,
      hosts: Object.fromEntries(await resolveNodeHosts(spec, '/s/secrets/replication.pgpass', processRunner)),
    };
    const [pg1, , pg3] = spec.nodes;
    assert.ok(pg1 && pg3);
    const conf = renderNodeConfig(spec, facts, pg3, pg1);
    assert.match(conf.postgresqlConf, /passfile=\/srv\/pg\/pg3-replication\.pgpass/);
    assert.match(conf.postgresqlConf, /sslmode=verify-full sslrootcert=\/srv\/pg\/pg3-tls\/ca\.crt'$/m);
    assert.match(conf.postgresqlConf, /^ssl_key_file = '\/srv\/pg\/pg3-tls\/pg3\.key'$/m);
    assert.match(conf.pgHba, /^hostssl\s+replication\s+replicator\s+127\.0\.0\.1\/32\s+scram-sha-256$/m);
    assert.match(conf.pgHba, /^hostssl\s+replication\s+replicator\s+10\.251\.9\.3\/32\s+scram-sha-256$/m);
    assert.doesNotMatch(conf.pgHba, /^host\s/m, 'with TLS no rule admits a connection without it');
  });
});
