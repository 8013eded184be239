import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { queryRestored } from '../helpers/restored.js';
import { startS3Server } from '../helpers/s3-server.js';
import type { S3Server } from '../helpers/s3-server.js';
import { TestCluster, assertNoLeakedServers } from '../helpers/test-cluster.js';

/** Every regular file under `dir` (no sockets), as paths relative to it. */
const filesUnder = (dir: string): string[] => {
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(d, e.name)) : e.isFile() ? [join(d, e.name)] : [],
    );
  return existsSync(dir) ? walk(dir).map((f) => relative(dir, f)) : [];
};

const s3Spec = (s3: S3Server, o: { bucket?: string; keyFrom?: string } = {}) =>
  'backup:\n  repo:\n    s3:\n' +
  `      bucket: ${o.bucket ?? s3.bucket}\n      endpoint: 127.0.0.1\n      port: ${s3.port}\n` +
  `      region: us-east-1\n      uriStyle: path\n      caFile: ${s3.caFile}\n` +
  `      key: { env: ${o.keyFrom ?? 'TEST_S3_KEY'} }\n      secret: { file: s3.secret }\n`;

describe('backups in an S3 repository (issue 28)', () => {
  let s3: S3Server;
  let s3Dir: string;
  let c: TestCluster;
  const env = () => ({ TEST_S3_KEY: s3.key });

  before(async () => {
    s3Dir = mkdtempSync(join(tmpdir(), 'pgrepl-s3-'));
    chmodSync(s3Dir, 0o755);
    s3 = await startS3Server(s3Dir);
    c = await TestCluster.create(['pg1', 'pg2']);
    c.extraSpec = s3Spec(s3);
    c.writeSpec();
    writeFileSync(join(c.base, 's3.secret'), `${s3.secret}\n`, { mode: 0o600 });
    const up = await c.cli(['up'], { env: env() });
    assert.equal(up.code, 0, up.stderr);
  });
  after(async () => {
    await c?.cleanup();
    await s3?.close();
    rmSync(s3Dir, { recursive: true, force: true });
    assertNoLeakedServers();
  });

  it('`up` makes the stanza in the bucket; the archive commands read the keys from a 0600 file, and no other file has them', async () => {
    const objects = filesUnder(join(s3.dataDir, s3.bucket));
    assert.ok(
      objects.some((o) => o.startsWith('pgrepl/backup/test/backup.info')),
      objects.join(' '),
    );
    assert.ok(
      objects.some((o) =>
        /^pgrepl\/archive\/test\/15-1\/0000000100000000\/0{7}10{14}\w{2}-[0-9a-f]{40}\.lz4/.test(o),
      ),
      objects.join(' '),
    );
    const [row] = await c.sql<{ command: string }>(
      'pg2',
      "SELECT current_setting('archive_command') AS command",
    );
    assert.match(
      row?.command ?? '',
      /--config='.*\/backup\/conf\/pg2\.conf' --config-include-path='.*\/backup\/secret' --stanza=test archive-push/,
    );
    const keys = join(c.base, 'state', 'backup', 'secret', 's3.conf');
    const st = statSync(keys);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.uid, statSync(c.dataDir('pg1')).uid);
    assert.match(readFileSync(keys, 'utf8'), /^repo1-s3-key-secret=S3RVER$/m);
    const leaking = filesUnder(join(c.base, 'state')).filter(
      (f) =>
        f !== 'backup/secret/s3.conf' &&
        !f.startsWith('data/') &&
        readFileSync(join(c.base, 'state', f), 'latin1').includes(s3.secret),
    );
    assert.deepEqual(leaking, []);
  });

  it('backs up, lists and restores through the bucket', async () => {
    await c.sql('pg1', 'CREATE TABLE t AS SELECT generate_series(1, 120) AS id');
    const b = await c.cli(['backup', '--type', 'full', '--json'], { env: env() });
    assert.equal(b.code, 0, b.stderr);
    await c.sql('pg1', 'INSERT INTO t SELECT generate_series(121, 150)');
    const list = await c.cli(['backups', '--json'], { env: env() });
    assert.equal(list.code, 0, list.stdout + list.stderr);
    const listed = JSON.parse(list.stdout) as {
      repository: string;
      backups: { type: string }[];
      gaps: unknown[];
    };
    assert.equal(listed.repository, `s3://${s3.bucket}/pgrepl (127.0.0.1)`);
    assert.deepEqual(
      listed.backups.map((x) => x.type),
      ['full'],
    );
    assert.deepEqual(listed.gaps, []);
    const r = await c.cli(['restore', '--latest', '--into', join(c.base, 'restored'), '--json'], {
      env: env(),
    });
    assert.equal(r.code, 0, r.stderr);
    const port = (JSON.parse(r.stdout) as { port: number }).port;
    const rows = await queryRestored<{ n: number }>(c, port, 'SELECT count(*)::int AS n FROM t');
    assert.equal(rows[0]?.n, 150);
  });

  it('refuses to run without its key, or with a bucket that is not there, and changes nothing', async () => {
    const other = await TestCluster.create(['pg1'], s3Spec(s3, { bucket: 'no-such-bucket' }));
    try {
      writeFileSync(join(other.base, 's3.secret'), `${s3.secret}\n`, { mode: 0o600 });
      const noKey = await other.cli(['up']);
      assert.equal(noKey.code, 1);
      assert.match(noKey.stderr, /E_SECRET.*backup\.repo\.s3 key comes from \$TEST_S3_KEY, which is not set/);
      const noBucket = await other.cli(['up'], { env: env() });
      assert.equal(noBucket.code, 1);
      assert.match(
        noBucket.stderr,
        /E_BACKUP_REPO.*s3:\/\/no-such-bucket\/pgrepl \(127\.0\.0\.1\) cannot be reached/,
      );
      assert.equal(existsSync(other.dataDir('pg1')), false);
    } finally {
      await other.cleanup();
    }
  });

  it('`destroy --with-backups` deletes the stanza from the bucket', async () => {
    const d = await c.cli(['destroy', '--yes', '--with-backups'], { env: env() });
    assert.equal(d.code, 0, d.stderr);
    const left = filesUnder(join(s3.dataDir, s3.bucket)).filter((o) => o.includes('/test/'));
    assert.deepEqual(left, []);
  });
});
