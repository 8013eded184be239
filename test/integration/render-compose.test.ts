import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { assertNoLeakedServers, TestCluster, waitUntil } from '../helpers/test-cluster.js';

const isRoot = process.getuid?.() === 0;
const SU = 'compose-su:pw';
const REPL = 'compose-repl\\pw';

/**
 * The container's part, played on this host: the same rendered files, with only what the container
 * would provide adapted (data and socket paths, the port it listens on, and the environment).
 */
describe('render compose: the generated files make a primary and a streaming replica on real PostgreSQL', () => {
  let c: TestCluster;
  let bin: string;
  const b = (...p: string[]) => join(c.base, 'bundle', ...p);
  const data = (n: string) => join(c.base, 'containers', n, 'data');
  const sock = (n: string) => join(c.base, 'containers', n, 'run');
  const env = (extra: Record<string, string> = {}) => ({
    PATH: `${bin}:${process.env['PATH'] ?? ''}`,
    POSTGRES_USER: 'postgres',
    POSTGRES_PASSWORD: SU,
    PGREPL_REPLICATION_USER: 'replicator',
    PGREPL_REPLICATION_PASSWORD: REPL,
    ...extra,
  });
  const asPostgres = (cmd: string, args: string[], e: Record<string, string>) =>
    spawnSync(isRoot ? 'runuser' : cmd, isRoot ? ['-u', 'postgres', '--', cmd, ...args] : args, {
      env: e,
      encoding: 'utf8',
    });

  /** Starts a node as the image would: `postgres -c config_file=… -c hba_file=… -c ident_file=…`. */
  function start(n: string): void {
    const opts = [
      `-c config_file=${b(n, 'postgresql.conf')}`,
      `-c hba_file=${b(n, 'pg_hba.conf')}`,
      `-c ident_file=${b(n, 'pg_ident.conf')}`,
      `-c port=${c.port(n)} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${sock(n)}`,
    ].join(' ');
    const r = asPostgres(
      join(bin, 'pg_ctl'),
      ['start', '-D', data(n), '-l', join(c.base, 'containers', n, 'log'), '-w', '-o', opts],
      env(),
    );
    assert.equal(r.status, 0, r.stderr + r.stdout);
  }

  async function query<R>(n: string, text: string): Promise<R[]> {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: c.port(n),
      user: 'postgres',
      password: SU,
      database: 'postgres',
    });
    await client.connect();
    try {
      return (await client.query(text)).rows as R[];
    } finally {
      await client.end();
    }
  }

  before(async () => {
    c = await TestCluster.create(
      ['pg1', 'pg2'],
      'superuser: { password: { env: T_SU } }\nreplication: { password: { env: T_REPL } }\n',
    );
    const r = await c.cli(['render', 'compose', '--out', b(), '--with-secrets'], {
      env: { T_SU: SU, T_REPL: REPL },
    });
    assert.equal(r.code, 0, r.stderr);
    // This spec's nodes are on 127.0.0.1, which inside a container is the container itself.
    assert.match(
      r.stderr,
      /^warning: pg1 \(127\.0\.0\.1\), pg2 \(127\.0\.0\.1\) have a loopback host: in a container/,
    );
    bin = (
      JSON.parse((await c.cli(['status', '--json'], { env: { T_SU: SU, T_REPL: REPL } })).stdout) as {
        postgres: { binDir: string };
      }
    ).postgres.binDir;
    for (const n of ['pg1', 'pg2']) mkdirSync(sock(n), { recursive: true });
    mkdirSync(data('pg1'), { recursive: true, mode: 0o700 });
    if (isRoot) execFileSync('chown', ['-R', 'postgres', c.base]);
  });
  after(async () => {
    await c.cleanup();
    assertNoLeakedServers();
  });

  it('primary: initdb as the image does, then its config and the mounted init script (over the socket, peer map)', async () => {
    const pw = join(c.base, 'containers', 'pg1', 'pw');
    writeFileSync(pw, `${SU}\n`, { mode: 0o600 });
    if (isRoot) execFileSync('chown', ['postgres', pw]);
    const init = asPostgres(
      join(bin, 'initdb'),
      ['-D', data('pg1'), '-U', 'postgres', `--pwfile=${pw}`, '--data-checksums'],
      env(),
    );
    assert.equal(init.status, 0, init.stderr);
    start('pg1');
    const script = asPostgres(
      'sh',
      [b('pg1', 'initdb.d', '10-pgrepl-replication.sh')],
      env({ PGHOST: sock('pg1'), PGPORT: String(c.port('pg1')) }),
    );
    assert.equal(script.status, 0, script.stderr);
    const slots = await query<{ slot_name: string }>('pg1', 'SELECT slot_name FROM pg_replication_slots');
    assert.deepEqual(
      slots.map((s) => s.slot_name),
      ['pg2'],
    );
    const [file] = await query<{ f: string }>(
      'pg1',
      "SELECT sourcefile AS f FROM pg_settings WHERE name = 'wal_level'",
    );
    assert.equal(file?.f, b('pg1', 'postgresql.conf'), 'the rendered postgresql.conf is the one in effect');
  });

  it('replica: pgrepl-clone.sh clones through its slot, and it streams with its own configuration', async () => {
    const clone = asPostgres('sh', [b('pg2', 'pgrepl-clone.sh')], env({ PGDATA: data('pg2') }));
    assert.equal(clone.status, 0, clone.stderr);
    start('pg2');
    await waitUntil(
      async () =>
        (
          await query<{ state: string }>(
            'pg1',
            "SELECT state FROM pg_stat_replication WHERE application_name = 'pg2'",
          )
        )[0]?.state === 'streaming',
      15_000,
      'pg2 to stream',
    );
    const [slot] = await query<{ active: boolean }>(
      'pg1',
      "SELECT active FROM pg_replication_slots WHERE slot_name = 'pg2'",
    );
    assert.equal(slot?.active, true);
    const [auto] = await query<{ n: string }>(
      'pg2',
      "SELECT count(*) AS n FROM pg_file_settings WHERE name IN ('primary_conninfo', 'primary_slot_name') AND sourcefile LIKE '%auto.conf'",
    );
    assert.equal(auto?.n, '0', 'no stale primary_conninfo in postgresql.auto.conf');
  });

  it("runs the verification queries each node's README shows, on the containers they name", async () => {
    for (const n of ['pg1', 'pg2']) {
      const readme = readFileSync(b(n, 'README.md'), 'utf8');
      const firstBlock = readme.split('```sh')[1]?.split('```')[0] ?? '';
      const queries = [...firstBlock.matchAll(/docker exec -it (\S+) psql -U postgres -c "([^"]+)"/g)];
      assert.ok(queries.length > 0, `${n}: README shows no query`);
      for (const [, container, sql] of queries) {
        const target = container?.replace(/^test-/, '') as string;
        assert.ok(
          ['pg1', 'pg2'].includes(target),
          `${n}: README names container ${container}, which is no node`,
        );
        const rows = await query<Record<string, unknown>>(target, sql as string);
        assert.ok(rows.length > 0, `${n}: ${sql} returned nothing on ${target}`);
      }
    }
  });

  it('the entrypoint guard refuses to start a node as a primary when a peer already is one', () => {
    const demoted = join(c.base, 'containers', 'old');
    mkdirSync(demoted, { recursive: true });
    writeFileSync(join(demoted, 'PG_VERSION'), '16\n');
    const guard = (pgdata: string, peers: string) =>
      spawnSync('sh', [b('pg1', 'pgrepl-entrypoint.sh'), 'postgres'], {
        env: env({ PGDATA: pgdata, PGREPL_PEERS: peers, PGREPL_NEXT_ENTRYPOINT: 'echo' }),
        encoding: 'utf8',
      });
    const refused = guard(demoted, `127.0.0.1:${c.port('pg2')},127.0.0.1:${c.port('pg1')}`);
    assert.equal(refused.status, 78);
    assert.match(
      refused.stderr,
      new RegExp(`127\\.0\\.0\\.1:${c.port('pg1')} is already the primary.*refusing to start`, 's'),
    );
    assert.equal(refused.stdout, '', 'the image entrypoint was not run');
    const allowed = guard(demoted, `127.0.0.1:${c.port('pg2')}`);
    assert.equal(allowed.status, 0, allowed.stderr);
    assert.equal(allowed.stdout.trim(), 'postgres', 'no peer is a primary: it starts');
    const standby = guard(data('pg2'), `127.0.0.1:${c.port('pg1')}`);
    assert.equal(standby.stdout.trim(), 'postgres', 'a standby always starts');
  });
});
