import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  NO_PG17,
  PG17_BIN,
  TestCluster,
  assertNoLeakedServers,
  freePort,
  pgBin,
  upCluster,
  waitUntil,
} from '../helpers/test-cluster.js';

const publication = (tables: string, extra = '') =>
  `logical:\n  publications:\n    - { name: shop, tables: [${tables}]${extra} }\n`;

const subscription = (publisher: TestCluster, extra = '') =>
  `logical:\n  subscriptions:\n    - { name: shop_copy, publication: shop, from: { spec: ${publisher.specFile} }${extra} }\n`;

const SCHEMA =
  'CREATE TABLE orders (id int PRIMARY KEY, item text); CREATE TABLE customers (id int PRIMARY KEY, name text); ' +
  'CREATE TABLE audit (at timestamptz, what text)';

/**
 * A publisher (of `pubNodes`) and a one-node subscriber, both up, then `setUp`, before the block's
 * tests; both removed after them even when they fail.
 */
function clustersForSuite(
  pubNodes: string[],
  use: (pub: TestCluster, sub: TestCluster) => void,
  setUp: () => Promise<void>,
  o: { subscriberSpec?: string; publisherSpec?: string } = {},
): void {
  let made: TestCluster[] = [];
  before(async () => {
    made = await Promise.all([
      TestCluster.create(pubNodes, o.publisherSpec),
      TestCluster.create(['pg1'], o.subscriberSpec),
    ]);
    use(made[0] as TestCluster, made[1] as TestCluster);
    await Promise.all(made.map(upCluster));
    await setUp();
  });
  after(async () => {
    for (const c of made) await c.cleanup();
    assertNoLeakedServers();
  });
}

/** `pgrepl logical subscribe` of shop_copy to `pub`'s publication shop. */
const subscribeArgs = (pub: TestCluster) => [
  ...['logical', 'subscribe', 'shop_copy'],
  ...['--publication', 'shop', '--from', pub.specFile],
];

/**
 * Table orders on both clusters, 200 rows on the publisher's, published by `publish`, and `sub`
 * subscribed to it with the initial copy done.
 */
async function subscribedToOrders(
  pub: TestCluster,
  sub: TestCluster,
  publish: () => Promise<void>,
): Promise<void> {
  for (const c of [pub, sub]) await c.sql('pg1', 'CREATE TABLE orders (id int PRIMARY KEY, item text)');
  await pub.sql('pg1', "INSERT INTO orders SELECT g, 'before' FROM generate_series(1, 200) g");
  await publish();
  const subscribed = await sub.cli(subscribeArgs(pub));
  assert.equal(subscribed.code, 0, subscribed.stderr);
  await waitUntil(async () => (await count(sub, 'pg1', 'orders')) === 200, 30_000, 'the initial copy');
}

async function count(c: TestCluster, node: string, table: string): Promise<number> {
  const [row] = await c.sql<{ n: number }>(node, `SELECT count(*)::int AS n FROM ${table}`);
  return row?.n ?? -1;
}

describe('logical replication between two pgrepl clusters (issue 30)', () => {
  let pub: TestCluster;
  let sub: TestCluster;
  clustersForSuite(
    ['pg1', 'pg2'],
    (p, x) => ((pub = p), (sub = x)),
    async () => {
      for (const c of [pub, sub]) await c.sql('pg1', SCHEMA);
      await pub.sql('pg1', "INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 500) g");
      await pub.sql('pg1', "INSERT INTO customers VALUES (1, 'ana'), (2, 'bruno')");
      await pub.sql('pg1', "INSERT INTO audit VALUES (now(), 'not published')");
    },
  );

  it('refuses to publish a table without a key, with its fix, and changes nothing', async () => {
    pub.extraSpec = publication('orders, audit');
    pub.writeSpec();
    const up = await pub.cli(['up']);
    assert.equal(up.code, 1, up.stdout);
    assert.match(up.stderr, /E_LOGICAL_PREFLIGHT/);
    assert.match(up.stderr, /\[no-replica-identity\] public\.audit has no primary key or replica identity/);
    assert.match(up.stderr, /fix: ALTER TABLE public\.audit ADD PRIMARY KEY/);
    const [level] = await pub.sql<{ v: string }>('pg1', "SELECT current_setting('wal_level') AS v");
    assert.equal(level?.v, 'replica');
    assert.deepEqual(await pub.sql('pg1', 'SELECT pubname FROM pg_publication'), []);
  });

  it('publishes: wal_level logical on every node (replicas restarted first), the publication, the role’s read rights', async () => {
    pub.extraSpec = publication('orders, customers');
    pub.writeSpec();
    const up = await pub.cli(['up', '--json']);
    assert.equal(up.code, 0, up.stderr);
    const steps = (JSON.parse(up.stdout) as { steps: { kind: string; node: string; action?: string }[] })
      .steps;
    const restarts = steps.filter((s) => s.kind === 'restart').map((s) => s.node);
    assert.deepEqual(restarts, ['pg2', 'pg1']);
    assert.deepEqual(
      steps.filter((s) => s.kind === 'logical').map((s) => s.action),
      ['create-publication'],
    );
    for (const node of ['pg1', 'pg2']) {
      const [level] = await pub.sql<{ v: string }>(node, "SELECT current_setting('wal_level') AS v");
      assert.equal(level?.v, 'logical', node);
    }
    const tables = await pub.sql<{ t: string }>(
      'pg1',
      "SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = 'shop' ORDER BY 1",
    );
    assert.deepEqual(
      tables.map((r) => r.t),
      ['public.customers', 'public.orders'],
    );
    assert.match(
      readFileSync(join(pub.dataDir('pg2'), 'pg_hba.conf'), 'utf8'),
      /^host\s+postgres\s+replicator\s+127\.0\.0\.1\/32\s+scram-sha-256$/m,
    );
    const again = await pub.cli(['up', '--json']);
    assert.equal((JSON.parse(again.stdout) as { changed: boolean }).changed, false);
  });

  it('subscribes: the published tables copied, new rows streamed, the password in no catalog', async () => {
    const up = await sub.cli(subscribeArgs(pub));
    assert.equal(up.code, 0, up.stderr);
    assert.match(
      readFileSync(sub.specFile, 'utf8'),
      /^logical:\n {2}subscriptions:\n {4}- \{ name: shop_copy, publication: shop, from: \{ spec: .*\/pgrepl\.yaml \} \}$/m,
    );
    await waitUntil(
      async () => (await count(sub, 'pg1', 'orders')) === 500,
      30_000,
      'the initial copy of orders',
    );
    assert.equal(await count(sub, 'pg1', 'customers'), 2);
    assert.equal(await count(sub, 'pg1', 'audit'), 0);
    await pub.sql(
      'pg1',
      "INSERT INTO orders VALUES (501, 'after the copy'); UPDATE customers SET name = 'bia' WHERE id = 2",
    );
    await waitUntil(async () => (await count(sub, 'pg1', 'orders')) === 501, 30_000, 'order 501 to arrive');
    const [c2] = await sub.sql<{ name: string }>('pg1', 'SELECT name FROM customers WHERE id = 2');
    assert.equal(c2?.name, 'bia');
    const [conninfo] = await sub.sql<{ c: string }>(
      'pg1',
      "SELECT subconninfo AS c FROM pg_subscription WHERE subname = 'shop_copy'",
    );
    assert.match(conninfo?.c ?? '', /passfile=/);
    assert.ok(!(conninfo?.c ?? '').includes(pub.replicationPassword()));
  });

  it('shows in status: the subscription streaming with its tables ready and its lag, the publisher’s slot', async () => {
    interface Sub {
      name: string;
      state: string;
      tables: { r: number };
      lagBytes: number | null;
      lastMessageAgeSeconds: number | null;
    }
    const subscriptionOf = async () => {
      const st = JSON.parse((await sub.cli(['status', '--json'])).stdout) as {
        logical: { subscriptions: Sub[] };
      };
      return st.logical.subscriptions[0];
    };
    await waitUntil(
      async () => (await subscriptionOf())?.lagBytes === 0,
      30_000,
      'the subscription to confirm everything',
    );
    const s = await subscriptionOf();
    assert.equal(s?.state, 'streaming');
    assert.equal(s?.tables.r, 2);
    assert.ok((s?.lastMessageAgeSeconds ?? 99) < 30);
    const text = await sub.cli(['status']);
    assert.equal(text.code, 0, text.stdout);
    assert.match(
      text.stdout,
      /subscription shop_copy \(postgres\) to shop: streaming; 2\/2 tables ready, 0 B behind the publisher/,
    );
    const published = JSON.parse((await pub.cli(['status', '--json'])).stdout) as {
      logical: {
        publications: { name: string; tables: number }[];
        slots: { name: string; active: boolean }[];
      };
    };
    assert.deepEqual(published.logical.publications, [{ name: 'shop', database: 'postgres', tables: 2 }]);
    assert.deepEqual(
      published.logical.slots.map((x) => [x.name, x.active]),
      [['shop_copy', true]],
    );
    // Stopped, the subscription makes status unhealthy, and says where to look.
    await sub.sql('pg1', 'ALTER SUBSCRIPTION shop_copy DISABLE');
    const disabled = await sub.cli(['status']);
    assert.match(
      disabled.stdout,
      /subscription shop_copy .*disabled \(ALTER SUBSCRIPTION shop_copy ENABLE\)/,
    );
    await sub.sql('pg1', 'ALTER SUBSCRIPTION shop_copy ENABLE');
  });
});

describe('a switchover of the publisher on PostgreSQL 15 (issue 30)', () => {
  let pub: TestCluster;
  let sub: TestCluster;
  clustersForSuite(
    ['pg1', 'pg2'],
    (p, x) => ((pub = p), (sub = x)),
    () =>
      subscribedToOrders(pub, sub, async () => {
        pub.extraSpec = publication('orders');
        pub.writeSpec();
        await upCluster(pub);
      }),
  );

  it('loses the slot; status says so, and `up` copies the tables again through a new one: every row, none twice', async () => {
    const sw = await pub.cli(['switchover', '--to', 'pg2']);
    assert.equal(sw.code, 0, sw.stderr);
    await pub.sql('pg2', "INSERT INTO orders SELECT g, 'after' FROM generate_series(201, 250) g");
    const st = await sub.cli(['status']);
    assert.equal(st.code, 3, st.stdout);
    assert.match(st.stdout, /subscription shop_copy .*WARNING: its slot is not on the publisher's primary/);
    const up = await sub.cli(['up', '--json']);
    assert.equal(up.code, 0, up.stderr);
    const steps = (JSON.parse(up.stdout) as { steps: { kind: string; action?: string }[] }).steps;
    assert.deepEqual(
      steps.filter((x) => x.kind === 'logical').map((x) => x.action),
      ['resync-subscription'],
    );
    await pub.sql('pg2', "INSERT INTO orders VALUES (251, 'after the re-sync')");
    await waitUntil(
      async () => (await count(sub, 'pg1', 'orders')) === 251,
      30_000,
      'every row after the re-sync',
    );
    const [after] = await sub.sql<{ n: number }>(
      'pg1',
      "SELECT count(*)::int AS n FROM orders WHERE item = 'after'",
    );
    assert.equal(after?.n, 50);
  });
});

describe(
  'a PostgreSQL 17 publisher keeps its subscription across a switchover: failover slots (issue 30)',
  {
    skip: NO_PG17,
  },
  () => {
    let pub: TestCluster;
    let sub: TestCluster;
    // Published from the start (every table: none yet), so that the standby's slot synchronization
    // starts with its server and finds the primary up: a worker that failed waits 10 s or more.
    const v17 = `postgres: { binDir: ${PG17_BIN} }\nlogical:\n  publications:\n    - { name: shop, all: true }\n`;
    clustersForSuite(
      ['pg1', 'pg2'],
      (p, x) => ((pub = p), (sub = x)),
      // The first `up` made the cluster; the publication is made on its running primary.
      () => subscribedToOrders(pub, sub, () => upCluster(pub)),
      { publisherSpec: v17 },
    );

    it('keeps the slot on the promoted standby: every row after the switchover, none copied again', async () => {
      // A row only the subscriber has: a re-sync (the PostgreSQL 15 way) would empty the table.
      await sub.sql('pg1', "INSERT INTO orders VALUES (100000, 'the subscriber''s own')");
      await waitUntil(
        async () => {
          const [slot] = await pub.sql<{ synced: boolean }>(
            'pg2',
            "SELECT synced FROM pg_replication_slots WHERE slot_name = 'shop_copy'",
          );
          return slot?.synced === true;
        },
        60_000,
        "the standby to synchronize the subscription's slot",
      );
      await pub.sql(
        'pg1',
        "INSERT INTO orders SELECT g, 'before the switchover' FROM generate_series(201, 220) g",
      );
      const sw = await pub.cli(['switchover', '--to', 'pg2']);
      assert.equal(sw.code, 0, sw.stderr);
      await pub.sql('pg2', "INSERT INTO orders SELECT g, 'after' FROM generate_series(221, 250) g");
      await waitUntil(
        async () => (await count(sub, 'pg1', 'orders')) === 251,
        30_000,
        'every row through the same slot on the new primary',
      );
      const st = await sub.cli(['status']);
      assert.equal(st.code, 0, st.stdout);
      assert.match(st.stdout, /subscription shop_copy \(postgres\) to shop: streaming/);
      const [own] = await sub.sql<{ n: number }>(
        'pg1',
        'SELECT count(*)::int AS n FROM orders WHERE id = 100000',
      );
      assert.equal(own?.n, 1, 'no re-sync: the table was not emptied');
    });
  },
);

describe('the pre-flight check of a subscription (issue 30)', () => {
  let pub: TestCluster;
  let sub: TestCluster;
  clustersForSuite(
    ['pg1'],
    (p, x) => ((pub = p), (sub = x)),
    async () => {
      await pub.sql(
        'pg1',
        'CREATE EXTENSION citext; CREATE TABLE orders (id int PRIMARY KEY, email citext, qty int)',
      );
      await pub.sql('pg1', "SELECT lo_from_bytea(0, 'a large object')");
      // The publisher accepts its large object: copied apart, say.
      pub.extraSpec = publication('orders', ', skipChecks: [large-objects]');
      pub.writeSpec();
      await upCluster(pub);
    },
  );

  it('reports a missing table, then a missing extension, a column and large objects, each with its fix; skipping makes it', async () => {
    const before = readFileSync(sub.specFile, 'utf8');
    const noTable = await sub.cli(subscribeArgs(pub));
    assert.equal(noTable.code, 1);
    assert.equal(readFileSync(sub.specFile, 'utf8'), before);
    assert.match(noTable.stderr, /\[missing-on-subscriber\] public\.orders does not exist on the subscriber/);
    assert.match(noTable.stderr, /\[large-objects\] the database holds 1 large object/);
    assert.match(
      noTable.stderr,
      /\[missing-extension\] extension citext is installed on the publisher, not on the subscriber/,
    );
    assert.match(noTable.stderr, /fix: CREATE EXTENSION citext on the subscriber/);
    await sub.sql('pg1', 'CREATE EXTENSION citext; CREATE TABLE orders (id int PRIMARY KEY, email text)');
    sub.extraSpec = subscription(pub);
    sub.writeSpec();
    const columns = await sub.cli(['up']);
    assert.equal(columns.code, 1);
    assert.match(
      columns.stderr,
      /\[column-mismatch\] public\.orders on the subscriber lacks \(or types differently\) email citext, qty integer/,
    );
    assert.deepEqual(await sub.sql('pg1', 'SELECT subname FROM pg_subscription'), []);
    await sub.sql(
      'pg1',
      'DROP TABLE orders; CREATE TABLE orders (id int PRIMARY KEY, email citext, qty int)',
    );
    sub.extraSpec = subscription(pub, ', skipChecks: [large-objects]');
    sub.writeSpec();
    const made = await sub.cli(['up']);
    assert.equal(made.code, 0, made.stderr);
    assert.equal((await sub.sql('pg1', 'SELECT subname FROM pg_subscription')).length, 1);
  });
});

interface UpgradePlanJson {
  target: { cluster: string; nodes: { name: string; port: number }[] };
  steps: string[];
  copyBytes: number;
  findings: { code: string; database: string; subject: string }[];
}

describe(
  'logical replication across major versions: 15 to 17 (issue 30)',
  {
    skip: NO_PG17,
  },
  () => {
    let pub: TestCluster;
    let sub: TestCluster;
    clustersForSuite(
      ['pg1'],
      (p, x) => ((pub = p), (sub = x)),
      async () => {
        await pub.sql(
          'pg1',
          "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders SELECT g, 'v15 ' || g FROM generate_series(1, 300) g",
        );
        pub.extraSpec = publication('orders');
        pub.writeSpec();
        await upCluster(pub);
      },
      { subscriberSpec: `postgres: { binDir: ${PG17_BIN} }\n` },
    );

    it('copies and streams from a PostgreSQL 15 publisher into a PostgreSQL 17 cluster made from a bare server package', async () => {
      const [version] = await sub.sql<{ v: string }>(
        'pg1',
        "SELECT current_setting('server_version_num') AS v",
      );
      assert.match(version?.v ?? '', /^17\d{4}$/);
      await sub.sql('pg1', 'CREATE TABLE orders (id int PRIMARY KEY, item text)');
      const up = await sub.cli(subscribeArgs(pub));
      assert.equal(up.code, 0, up.stderr);
      await pub.sql('pg1', "INSERT INTO orders VALUES (301, 'after')");
      await waitUntil(async () => (await count(sub, 'pg1', 'orders')) === 301, 30_000, 'every row on 17');
    });

    it('plans an upgrade to 17: the new cluster beside, the steps, the copy estimate, and what refuses it', async () => {
      const plan = async () => {
        const r = await pub.cli(['upgrade', '--to-bin', PG17_BIN, '--plan', '--json']);
        return { code: r.code, plan: JSON.parse(r.stdout || '{}') as UpgradePlanJson, stderr: r.stderr };
      };
      const clean = await plan();
      assert.equal(clean.code, 0, clean.stderr);
      assert.equal(clean.plan.target.cluster, 'test-pg17');
      assert.deepEqual(
        clean.plan.target.nodes.map((n) => n.port),
        [pub.port('pg1') + 100],
      );
      assert.equal(clean.plan.steps.length, 7);
      assert.ok(clean.plan.copyBytes > 0);
      assert.deepEqual(clean.plan.findings, []);
      await pub.sql('pg1', "CREATE TABLE notes (body text); SELECT lo_from_bytea(0, 'x')");
      const blocked = await plan();
      assert.equal(blocked.code, 3);
      assert.deepEqual(
        blocked.plan.findings.map((f) => [f.code, f.database, f.subject]),
        [
          ['no-replica-identity', 'postgres', 'public.notes'],
          ['large-objects', 'postgres', 'pg_largeobject'],
        ],
      );
      const text = await pub.cli(['upgrade', '--to-bin', PG17_BIN, '--plan']);
      assert.match(text.stdout, /fix: ALTER TABLE public\.notes ADD PRIMARY KEY/);
      const down = await sub.cli(['upgrade', '--to-bin', pgBin(), '--plan']);
      assert.equal(down.code, 2);
      assert.match(down.stderr, /not newer than the cluster's 17/);
      const refused = await pub.cli(['upgrade', '--to-bin', PG17_BIN]);
      assert.equal(refused.code, 1);
      assert.match(
        refused.stderr,
        /E_LOGICAL_PREFLIGHT: the pre-flight check refuses the upgrade; nothing was changed/,
      );
      assert.match(refused.stderr, /\[large-objects\] postgres/);
      assert.equal(existsSync(join(pub.base, 'pgrepl-pg17.yaml')), false);
    });

    it('gives a PostgreSQL 17 cluster from a bare server package a second node, by copying its files under a low-level backup', async () => {
      sub.nodes.push({ name: 'pg2', port: await freePort() });
      sub.writeSpec();
      const up = await sub.cli(['up']);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(existsSync(join(sub.dataDir('pg2'), 'backup_label')), false, 'recovery began');
      await pub.sql('pg1', "INSERT INTO orders VALUES (302, 'to both nodes')");
      await waitUntil(
        async () => (await count(sub, 'pg2', 'orders')) === 302,
        30_000,
        "the publisher's row on the new replica, through the subscriber's primary",
      );
      const [standby] = await sub.sql<{ r: boolean }>('pg2', 'SELECT pg_is_in_recovery() AS r');
      assert.equal(standby?.r, true);
      const status = await sub.cli(['status']);
      assert.equal(status.code, 0, status.stdout);
      assert.match(status.stdout, /pg2 .*replica .*streaming/);
    });
  },
);
