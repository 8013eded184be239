import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requestJson } from '../../src/dcs/http-json.js';
import { API_OFFSET, haveEtcd } from '../helpers/ha-agents.js';
import { TestCluster, assertNoLeakedServers, waitUntil } from '../helpers/test-cluster.js';

const NODES = ['pg1', 'pg2', 'pg3'];
const SECRETS = { SCAN_SU: 'su-Sc4n:n3edle', SCAN_REPL: 'repl-Sc4n:n33dle' };
const NEEDLES = [...Object.values(SECRETS), 'PRIVATE KEY'];

/** Every file under `dir` but those meant to hold a secret (secrets/, passfiles, keys, the API token). */
function filesUnder(dir: string): string[] {
  const meant = /(^|\/)(secrets\/|api-token$)|\.pgpass$|\.key$/;
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (meant.test(relative(dir, p))) continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && statSync(p).size < 64 * 1024 * 1024) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The command lines of every process on this machine, by PID. */
function commandLines(): Map<number, string> {
  const out = new Map<number, string>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      out.set(Number(pid), readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function assertClean(where: string, text: string): void {
  for (const n of NEEDLES)
    assert.ok(!text.includes(n), `${where} holds ${n === 'PRIVATE KEY' ? 'a private key' : 'a password'}`);
}

describe(
  'no secret in argv, logs, status, API answers or rendered files (issue 13)',
  { skip: haveEtcd ? false : 'no etcd binary (apt-get install etcd-server)' },
  () => {
    let c: TestCluster;
    const cli = (args: string[]) => c.cli(args, { env: SECRETS });

    before(async () => {
      c = await TestCluster.create(
        NODES,
        'tls: auto\nsuperuser: { password: { env: SCAN_SU } }\nreplication: { password: { env: SCAN_REPL } }\nha:\n  profile: fast\n',
      );
      const up = await cli(['up', '--ha']);
      assert.equal(up.code, 0, up.stderr);
      assertClean('the output of up --ha', up.stdout + up.stderr);
      await waitUntil(
        async () => JSON.parse((await cli(['status', '--json'])).stdout).healthy === true,
        30_000,
        'healthy',
      );
      // Something for the logs to tell: a switchover through the agents.
      const sw = await cli(['switchover', '--to', 'pg2']);
      assert.equal(sw.code, 0, sw.stderr);
      assertClean('the output of switchover', sw.stdout + sw.stderr);
    });

    after(async () => {
      await c?.cleanup();
      assertNoLeakedServers();
    });

    it('in no process’s command line: servers, agents, watchdogs, etcd', () => {
      for (const [pid, line] of commandLines()) assertClean(`process ${pid} (${line.slice(0, 80)})`, line);
    });

    it('in what the commands print', async () => {
      for (const args of [
        ['status'],
        ['status', '--json'],
        ['url'],
        ['history', '--json'],
        ['logs', 'pg1'],
        ['rotate-certs', '--dry-run', '--json'],
      ]) {
        const r = await cli(args);
        assertClean(`pgrepl ${args.join(' ')}`, r.stdout + r.stderr);
      }
    });

    it('in the agents’ API answers', async () => {
      const ca = { ca: readFileSync(join(c.base, 'state', 'tls', 'ca.crt')) };
      for (const n of NODES) {
        const r = await requestJson(
          `https://127.0.0.1:${c.port(n) + API_OFFSET}/status`,
          null,
          AbortSignal.timeout(2000),
          {},
          ca,
        );
        assertClean(`${n}'s /status`, JSON.stringify(r.body));
      }
    });

    it('in any file pgrepl or the servers wrote, but those meant for one', () => {
      for (const f of filesUnder(c.base)) assertClean(f, readFileSync(f, 'latin1'));
    });

    it('in bundles rendered without --with-secrets', async () => {
      for (const kind of ['conf', 'compose']) {
        const out = join(c.base, `bundle-${kind}`);
        const r = await cli(['render', kind, '--out', out]);
        assert.equal(r.code, 0, r.stderr);
        const files = filesUnder(out);
        assert.ok(files.length > 5);
        for (const f of files) assertClean(f, readFileSync(f, 'utf8'));
        assert.ok(
          !readdirSync(join(out, 'pg1', 'tls')).some((f) => f.endsWith('.key')),
          'a key in the bundle',
        );
      }
      // The scan finds what it looks for: with --with-secrets, .env holds the passwords.
      const withSecrets = join(c.base, 'bundle-with-secrets');
      assert.equal((await cli(['render', 'conf', '--out', withSecrets, '--with-secrets'])).code, 0);
      assert.throws(
        () => assertClean('.env', readFileSync(join(withSecrets, 'pg1', '.env'), 'utf8')),
        /holds a password/,
      );
    });
  },
);
