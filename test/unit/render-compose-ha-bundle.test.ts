import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { renderComposeHaBundle } from '../../src/deploy/render-compose-ha-bundle.js';
import { renderSystemdBundle } from '../../src/deploy/render-systemd-bundle.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { composeValidator } from '../helpers/compose-schema.js';
import { assertGolden } from '../helpers/golden.js';
import { certsWithoutKeys } from '../helpers/bundle-certs.js';

const TEXT = `cluster: shop
replication: { mode: sync }
ha: { profile: fast }
nodes:
  - { name: db1, host: 10.0.0.11, port: 5432 }
  - { name: db2, host: 10.0.0.12, port: 5432 }
  - { name: db3, host: 10.0.0.13, port: 5432 }
  - { name: db4, host: 10.0.0.14, port: 5432 }
`;

const input = {
  spec: parseSpec(TEXT, 'golden.yaml', '/'),
  specText: TEXT,
  certs: certsWithoutKeys(['db1', 'db2', 'db3', 'db4']),
  generatedSecrets: undefined,
};
const files = renderComposeHaBundle({ ...input, pgrepl: 'pgrepl@0.1.0', pgMajor: 15 });
const file = (path: string) => {
  const f = files.find((x) => x.path === path);
  assert.ok(f, `${path} is rendered`);
  return f.content;
};

interface Service {
  entrypoint: string[];
  network_mode: string;
  init: boolean;
  volumes: string[];
  depends_on?: string[];
}
const services = (node: string) =>
  (parse(file(`${node}/compose.yaml`)) as { services: Record<string, Service> }).services;

describe('render compose --ha: the agents in containers (issue 13)', () => {
  it('renders exactly the reviewed files (UPDATE_GOLDEN=1 npm test rewrites them; review the diff)', () => {
    assertGolden('compose-ha-bundle', files);
  });

  it('writes compose files that the Compose Specification schema accepts', () => {
    const validate = composeValidator();
    for (const node of ['db1', 'db2', 'db3', 'db4'])
      assert.deepEqual(validate(parse(file(`${node}/compose.yaml`))), [], node);
  });

  it('runs an etcd member beside the agent on the first three hosts only, on the hosts’ network', () => {
    assert.deepEqual(Object.keys(services('db1')).sort(), ['agent', 'etcd']);
    assert.deepEqual(Object.keys(services('db4')), ['agent']);
    assert.deepEqual(services('db2').agent?.depends_on, ['etcd']);
    for (const s of [...Object.values(services('db1')), ...Object.values(services('db4'))]) {
      assert.equal(s.network_mode, 'host');
      assert.equal(s.init, true, 'something reaps what the agent starts detached');
      assert.ok(s.volumes.includes('.:/bundle:ro'));
    }
    assert.deepEqual(services('db4').agent?.entrypoint, ['/bundle/compose-entrypoint.sh', 'agent']);
    assert.deepEqual(services('db1').etcd?.entrypoint, ['/bundle/compose-entrypoint.sh', 'etcd']);
  });

  it("ships render systemd's files unchanged, which its entrypoint installs and runs", () => {
    const systemd = renderSystemdBundle(input);
    for (const f of systemd.filter((x) => !/README/.test(x.path)))
      assert.equal(file(f.path), f.content, `${f.path} is the same as render systemd's`);
    // Its state lives in the volumes: the data directory and etcd's data outlive a container.
    const agent = services('db1').agent as Service;
    assert.ok(agent.volumes.includes('state:/var/lib/pgrepl/shop'));
    assert.ok(services('db1').etcd?.volumes.includes('etcd-data:/var/lib/pgrepl-etcd/shop'));
    const entry = file('db1/compose-entrypoint.sh');
    assert.match(entry, /^\.\/install\.sh$/m);
    assert.match(entry, /agent\) unit=pgrepl-shop-agent\.service/);
    const sh = spawnSync('sh', ['-n'], { input: entry });
    assert.equal(sh.status, 0, sh.stderr.toString());
  });

  it('builds an image with the PostgreSQL the spec was rendered with and this pgrepl', () => {
    const docker = file('db3/Dockerfile');
    assert.match(docker, /^FROM node:20-bookworm-slim$/m);
    assert.match(docker, /postgresql-15 etcd-server/);
    assert.match(docker, /^ARG PGREPL=pgrepl@0\.1\.0$/m);
    assert.match(
      file('README.md'),
      /docker compose exec -u postgres agent pgrepl -c \/etc\/pgrepl\/shop\/pgrepl\.yaml status/,
    );
    assert.match(file('db3/README.pt-BR.md'), /docker compose up -d --build/);
  });
});
