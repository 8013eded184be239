import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { renderComposeBundle } from '../../src/deploy/render-compose-bundle.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { composeValidator } from '../helpers/compose-schema.js';
import { assertGolden } from '../helpers/golden.js';
import { certsWithoutKeys } from '../helpers/bundle-certs.js';

const spec = parseSpec(
  `cluster: shop
replication: { mode: quorum, syncCount: 1 }
access: [{ cidr: 10.0.0.0/24, database: shop, user: app }]
nodes:
  - { name: db1, host: 10.0.0.11, port: 5432 }
  - { name: db2, host: 10.0.0.12, port: 5432 }
  - { name: db3, host: 10.0.0.13, port: 5433 }
`,
  'golden.yaml',
  '/',
);
const files = renderComposeBundle({
  spec,
  image: 'postgres:16-alpine',
  secrets: undefined,
  // tls: auto (the nodes are on other hosts); without secrets, no key goes into the folders.
  certs: certsWithoutKeys(['db1', 'db2', 'db3']),
});
const file = (path: string) => files.find((f) => f.path === path)?.content ?? assert.fail(`no ${path}`);

interface Service {
  image: string;
  container_name: string;
  restart: string;
  entrypoint: string[];
  command: string[];
  volumes: string[];
  ports: string[];
}
const service = (node: string) =>
  (parse(file(`${node}/compose.yaml`)) as { services: { postgres: Service } }).services.postgres;

describe('render compose', () => {
  it('renders exactly the reviewed files (UPDATE_GOLDEN=1 npm test rewrites them)', () => {
    assertGolden('compose-bundle', files);
  });

  it('writes compose files that the Compose Specification schema accepts', () => {
    const validate = composeValidator();
    for (const node of ['db1', 'db2', 'db3'])
      assert.deepEqual(validate(parse(file(`${node}/compose.yaml`))), [], node);
    assert.notDeepEqual(validate({ services: { p: { image: 5 } } }), [], 'the validator rejects a bad file');
  });

  it('really uses its configuration: the files it mounts are the ones the command names', () => {
    for (const node of ['db1', 'db2', 'db3']) {
      const s = service(node);
      const mounted = new Set(s.volumes.map((v) => v.split(':')[1]));
      const named = s.command.filter((a) => /^(config|hba|ident)_file=/.test(a)).map((a) => a.split('=')[1]);
      assert.equal(named.length, 3);
      for (const path of named) assert.ok(mounted.has(path), `${node}: ${path} is named but not mounted`);
      assert.equal(s.ports[0], `${spec.nodes.find((n) => n.name === node)?.port}:5432`);
    }
  });

  it('mounts the primary init script under the name it has, and only on the primary', () => {
    const init = service('db1').volumes.find((v) => v.includes('docker-entrypoint-initdb.d'));
    assert.equal(
      init,
      './initdb.d/10-pgrepl-replication.sh:/docker-entrypoint-initdb.d/10-pgrepl-replication.sh:ro',
    );
    assert.ok(files.some((f) => f.path === 'db1/initdb.d/10-pgrepl-replication.sh'));
    assert.ok(!service('db2').volumes.some((v) => v.includes('initdb')));
    assert.match(
      file('db1/initdb.d/10-pgrepl-replication.sh'),
      /pg_create_physical_replication_slot\('db2', true\);\nSELECT pg_create_physical_replication_slot\('db3', true\)/,
    );
  });

  it('admits replication through the replication pseudo-database from each host, SCRAM, no trust', () => {
    const hba = file('db2/pg_hba.conf');
    for (const h of ['10.0.0.11', '10.0.0.12', '10.0.0.13']) {
      assert.match(
        hba,
        new RegExp(
          `^hostssl\\s+replication\\s+replicator\\s+${h.replace(/\./g, '\\.')}/32\\s+scram-sha-256$`,
          'm',
        ),
      );
    }
    assert.doesNotMatch(hba, /trust|md5/);
    assert.match(hba, /^local\s+all\s+all\s+peer map=pgrepl$/m);
  });

  it('has each replica stream through its own slot from the primary host, quorum rendered', () => {
    const conf = file('db3/postgresql.conf');
    assert.match(conf, /^primary_slot_name = 'db3'$/m);
    assert.match(
      conf,
      /^primary_conninfo = 'host=10\.0\.0\.11 port=5432 user=replicator passfile=pgrepl-replication\.pgpass application_name=db3/m,
    );
    assert.match(conf, /^synchronous_standby_names = 'ANY 1 \("db1", "db2"\)'$/m);
    assert.match(conf, /^listen_addresses = '\*'$/m);
    assert.match(conf, /^unix_socket_directories = '\/var\/run\/postgresql'$/m);
  });

  it('guards every node against coming back as a second primary, and names the containers its README uses', () => {
    for (const node of ['db1', 'db2', 'db3']) {
      const s = service(node);
      assert.deepEqual(s.entrypoint, ['/usr/local/bin/pgrepl-entrypoint.sh']);
      assert.equal(s.restart, 'unless-stopped');
      assert.equal(s.container_name, `shop-${node}`);
      assert.match(file(`${node}/README.md`), new RegExp(`docker exec -it shop-${node} psql`));
      assert.match(file(`${node}/README.pt-BR.md`), /## Promover \(só quando o primário se foi de vez\)/);
    }
    assert.match(file('db2/.env'), /^PGREPL_PEERS=10\.0\.0\.11:5432,10\.0\.0\.13:5433$/m);
  });
});
