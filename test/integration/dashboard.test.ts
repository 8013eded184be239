import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { clusterForSuite, REPO, upCluster, waitUntil } from '../helpers/test-cluster.js';
import type { TestCluster } from '../helpers/test-cluster.js';
import { API_OFFSET, haClusterForSuite, haveEtcd } from '../helpers/ha-agents.js';

const NODES = ['pg1', 'pg2', 'pg3'];
const CHROMIUM = '/usr/bin/chromium';
/** Where the screenshots go: a test artifact per state, language and screen. */
export const SHOTS = join(REPO, 'dist', 'test-artifacts', 'dashboard');

const SCREENS = {
  desktop: { width: 1280, height: 800 },
  phone: { width: 390, height: 844 },
} as const;

/**
 * The page every agent serves at /ui, against a real cluster with agents: its data endpoints and
 * stream, then the page itself in headless Chromium (Debian's, driven by playwright-core).
 */
describe('the dashboard', { skip: haveEtcd ? false : 'no etcd binary (apt-get install etcd-server)' }, () => {
  let c: TestCluster;
  const agents = haClusterForSuite(NODES, 'ha:\n  profile: fast\n  failsafe: false\n', (made) => (c = made));
  const api = (node: string, path: string) => `http://127.0.0.1:${c.port(node) + API_OFFSET}${path}`;
  const token = () => readFileSync(join(c.base, 'state', 'ha', 'api-token'), 'utf8').trim();

  /** Writes `n` rows on the leader, one transaction each, so that rates and lag have something to show. */
  const write = async (leader: string, n: number) => {
    for (let i = 0; i < n; i++) await c.sql(leader, 'INSERT INTO probe (node) VALUES ($1)', [leader]);
  };

  interface ViewJson {
    cluster: string;
    actions: boolean;
    status: { primary: string | null; nodes: { name: string; role: string }[]; ha?: { leader: string } };
    candidates: { node: string; why: string | null }[];
    history: { op: string; node: string }[];
  }

  describe('its data', () => {
    it("serves the cluster's view from any agent: the primary, each node, the candidates best first", async () => {
      const leader = await agents.settled();
      for (const node of NODES) {
        const res = await fetch(api(node, '/ui/api/view'));
        assert.equal(res.status, 200);
        const v = (await res.json()) as ViewJson;
        assert.equal(v.status.primary, leader, `${node}'s view`);
        assert.equal(v.status.ha?.leader, leader);
        assert.deepEqual(v.status.nodes.map((n) => n.name).sort(), NODES);
        assert.deepEqual(
          v.candidates.map((x) => x.node).sort(),
          NODES.filter((n) => n !== leader),
        );
        assert.equal(v.actions, true, 'the agents have a token: actions are offered to whoever has it');
      }
    });

    it('keeps every agent’s samples and merges them: WAL and commit rates, each replica’s lag', async () => {
      const leader = await agents.settled();
      await write(leader, 50);
      const replicas = NODES.filter((n) => n !== leader);
      const wanted = ['wal_rate', 'commit_rate', ...replicas.map((r) => `lag_bytes/${r}`)];
      await waitUntil(
        async () => {
          const s = (await (await fetch(api(replicas[0] as string, '/ui/api/series'))).json()) as Record<
            string,
            { t: number[]; v: (number | null)[] }
          >;
          return (
            wanted.every((k) => (s[k]?.t.length ?? 0) >= 2) &&
            (s['commit_rate']?.v ?? []).some((v) => (v ?? 0) > 0)
          );
        },
        15_000,
        `the series ${wanted.join(', ')} from a replica's agent, with commits counted`,
      );
    });

    it('streams the view and new samples (server-sent events) every second', async () => {
      const ctl = new AbortController();
      const res = await fetch(api('pg1', '/ui/api/stream'), { signal: ctl.signal });
      assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      const began = Date.now();
      while (
        !(text.includes('event: view') && text.includes('event: series')) &&
        Date.now() - began < 10_000
      ) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      ctl.abort();
      assert.match(text, /^retry: 2000/);
      assert.match(text, /event: view\ndata: \{.*"cluster"/);
      assert.match(text, /event: series\ndata: \{/);
    });

    it('forbids inline scripts and framing, and answers what it does not serve with 404', async () => {
      const page = await fetch(api('pg1', '/ui'));
      assert.equal(page.status, 200);
      const csp = page.headers.get('content-security-policy') ?? '';
      assert.match(csp, /script-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(await page.text(), /<script>/, 'no inline script in the page');
      assert.equal((await fetch(api('pg1', '/ui/nothing'))).status, 404);
      assert.equal((await fetch(api('pg1', '/ui/app.js'))).status, 200);
    });

    it("queries in its Grafana dashboard only series the agents' /metrics export", async () => {
      const leader = await agents.settled();
      await write(leader, 5);
      const grafana = readFileSync(join(REPO, 'grafana', 'pgrepl-dashboard.json'), 'utf8');
      const queried = [...new Set(grafana.match(/pgrepl_[a-z_]+/g) ?? [])];
      assert.ok(queried.length >= 10, queried.join(', '));
      const texts = await Promise.all(NODES.map(async (n) => (await fetch(api(n, '/metrics'))).text()));
      for (const name of queried)
        assert.ok(
          texts.every((t) => t.includes(`# TYPE ${name} `)),
          `${name} is queried by the Grafana dashboard but not exported by every agent`,
        );
      // And with values where the panels need them: the primary's and the replicas' own.
      for (const name of [
        'pgrepl_leader',
        'pgrepl_xact_commit_total',
        'pgrepl_wal_lsn_bytes',
        'pgrepl_slot_retained_bytes',
        'pgrepl_replication_lag_bytes',
      ])
        assert.ok(
          texts.some((t) => new RegExp(`^${name}(\\{| )`, 'm').test(t)),
          `no agent has a value for ${name}`,
        );
    });

    it('refuses a mutating request from another origin, even with the token', async () => {
      const res = await fetch(api('pg1', '/pause'), {
        method: 'POST',
        headers: { authorization: `Bearer ${token()}`, origin: 'http://evil.example' },
      });
      assert.equal(res.status, 403);
      const v = (await (await fetch(api('pg1', '/ui/api/view'))).json()) as {
        status: { ha: { paused: boolean } };
      };
      assert.equal(v.status.ha.paused, false, 'nothing was paused');
    });
  });

  describe(
    'in a browser',
    { skip: existsSync(CHROMIUM) ? false : 'no chromium (apt-get install chromium)' },
    () => {
      let browser: Browser;
      before(async () => {
        mkdirSync(SHOTS, { recursive: true });
        browser = await chromium.launch({ executablePath: CHROMIUM });
      });
      after(async () => {
        await browser?.close();
      });

      const open = async (
        node: string,
        o: { lang?: 'en-US' | 'pt-BR'; screen?: keyof typeof SCREENS; dark?: boolean } = {},
      ) => {
        const context = await browser.newContext({
          locale: o.lang ?? 'en-US',
          viewport: SCREENS[o.screen ?? 'desktop'],
          colorScheme: o.dark ? 'dark' : 'light',
        });
        const page = await context.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        page.on('console', (m) => {
          if (m.type() === 'error') errors.push(m.text());
        });
        await page.goto(api(node, '/ui'));
        await page.locator('.node').first().waitFor();
        return { page, errors, close: () => context.close() };
      };

      /** The state `page` shows, as an artifact: then in both languages, on a desktop and a phone. */
      const shot = async (page: Page, name: string) => {
        await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
        const port = Number(new URL(page.url()).port);
        const node = NODES.find((n) => c.port(n) + API_OFFSET === port) as string;
        for (const lang of ['en-US', 'pt-BR'] as const)
          for (const screen of ['desktop', 'phone'] as const) {
            const other = await open(node, { lang, screen });
            try {
              await other.page.locator('.u-over').first().waitFor();
              await other.page.screenshot({
                path: join(SHOTS, `${name}-${lang}-${screen}.png`),
                fullPage: true,
              });
            } finally {
              await other.close();
            }
          }
      };

      /** The node the page marks as primary holding the leader key. */
      const shownPrimary = (page: Page) =>
        page
          .locator('.node.primary')
          .getAttribute('data-node', { timeout: 1000 })
          .catch(() => null);

      it('shows the primary, each node, the charts and the candidates, in English and Portuguese, desktop and phone', async () => {
        const leader = await agents.settled();
        await write(leader, 30);
        for (const lang of ['en-US', 'pt-BR'] as const)
          for (const screen of ['desktop', 'phone'] as const) {
            const { page, errors, close } = await open(NODES[0] as string, { lang, screen });
            try {
              assert.equal(await shownPrimary(page), leader);
              assert.equal(await page.locator('.node').count(), NODES.length);
              await page.locator('.u-over').first().waitFor();
              assert.equal(
                await page.locator('html').getAttribute('lang'),
                lang === 'pt-BR' ? 'pt-BR' : 'en',
              );
              const heading = await page.locator('#topology').textContent();
              assert.equal(heading, lang === 'pt-BR' ? 'Topologia' : 'Topology');
              // Wide enough for nothing to scroll sideways, on a phone too.
              const overflow = Number(
                await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'),
              );
              assert.ok(overflow <= 0, `the page is ${overflow} px wider than the ${screen}`);
              await page.screenshot({ path: join(SHOTS, `cluster-${lang}-${screen}.png`), fullPage: true });
              assert.deepEqual(errors, []);
            } finally {
              await close();
            }
          }
        const dark = await open(NODES[0] as string, { dark: true });
        try {
          // The system's dark theme: light text on a dark page.
          const colors = String(
            await dark.page.evaluate(
              'getComputedStyle(document.body).backgroundColor + " " + getComputedStyle(document.body).color',
            ),
          );
          assert.equal(colors, 'rgb(21, 23, 27) rgb(230, 232, 236)');
          await dark.page.locator('.u-over').first().waitFor();
          await dark.page.screenshot({ path: join(SHOTS, 'cluster-en-US-desktop-dark.png'), fullPage: true });
        } finally {
          await dark.close();
        }
      });

      it('shows a switchover within 3 s: the new primary, and the event in the history', async () => {
        const before = await agents.settled();
        const { page, errors, close } = await open(before);
        try {
          const target = NODES.find((n) => n !== before) as string;
          const r = await c.cli(['switchover', '--to', target]);
          assert.equal(r.code, 0, r.stderr);
          const done = Date.now();
          await waitUntil(
            async () => (await shownPrimary(page)) === target,
            10_000,
            `the page to show ${target}`,
          );
          await page.locator(`.history li[data-op="switchover"]`).first().waitFor({ timeout: 10_000 });
          const late = Date.now() - done;
          console.log(`# the page showed the new primary ${late} ms after \`switchover\` returned`);
          assert.ok(late <= 3000, `the page showed the switchover ${late} ms after it was done`);
          await shot(page, 'after-switchover');
          assert.deepEqual(errors, []);
        } finally {
          await close();
        }
      });

      it('shows a replica whose replay is paused with rising lag, and again when it resumes', async () => {
        const leader = await agents.settled();
        const replica = NODES.find((n) => n !== leader) as string;
        const { page, close } = await open(leader);
        try {
          await c.sql(replica, 'SELECT pg_wal_replay_pause()');
          const lagOf = async () => {
            const s = (await (await fetch(api(leader, '/ui/api/series'))).json()) as Record<
              string,
              { v: (number | null)[] }
            >;
            const v = s[`lag_bytes/${replica}`]?.v ?? [];
            return v[v.length - 1] ?? 0;
          };
          await waitUntil(
            async () => {
              await write(leader, 20);
              return (await lagOf()) > 0;
            },
            20_000,
            `${replica}'s lag to rise while its replay is paused`,
          );
          // The card says it: the lag and the agent's sentence on it.
          await page
            .locator(`.node[data-node="${replica}"] dd`, { hasText: /[1-9][0-9.]* (B|kB|MB)/ })
            .first()
            .waitFor({ timeout: 10_000 });
          await page
            .locator(`.node[data-node="${replica}"] .problem`, { hasText: 'its replay is paused' })
            .waitFor({ timeout: 10_000 });
          await shot(page, 'replay-paused');
          await c.sql(replica, 'SELECT pg_wal_replay_resume()');
          await waitUntil(async () => (await lagOf()) === 0, 20_000, `${replica}'s lag back to 0`);
          await page
            .locator(`.node[data-node="${replica}"] .problem`, { hasText: 'its replay is paused' })
            .waitFor({ state: 'detached', timeout: 10_000 });
        } finally {
          await c.sql(replica, 'SELECT pg_wal_replay_resume()').catch(() => undefined);
          await close();
        }
      });

      it('offers no action without the token, and runs a switchover with it, after asking', async () => {
        const before = await agents.settled();
        const { page, errors, close } = await open(before);
        try {
          assert.equal(await page.getByRole('button', { name: 'Switch over…' }).count(), 0);
          await page.locator('input[type="password"]').fill(token());
          await page.getByRole('button', { name: 'Unlock' }).click();
          await page.getByRole('button', { name: 'Switch over…' }).click();
          const target = NODES.find((n) => n !== before) as string;
          await page.locator('.confirm select').selectOption(target);
          // The candidates as the agents rank them, before anything is done.
          assert.ok((await page.locator('.confirm .candidates li').count()) >= 1);
          assert.equal(page.url().includes(token()), false, 'the token is never in a URL');
          // The plan, in the page's words, before anything is done.
          assert.match(
            (await page.locator('.confirm .plan').textContent()) ?? '',
            new RegExp(`${target} receives everything`),
          );
          await page.getByRole('button', { name: 'Confirm' }).click();
          await waitUntil(
            async () => (await shownPrimary(page)) === target,
            30_000,
            `the page to show ${target}`,
          );
          assert.equal(await agents.settled(), target);
          // Maintenance mode, asked and lifted from the page, each confirmed.
          await page.getByRole('button', { name: 'Pause the agents…' }).click();
          await page.getByRole('button', { name: 'Confirm' }).click();
          await page.locator('.problem', { hasText: 'maintenance mode' }).waitFor({ timeout: 10_000 });
          await page.getByRole('button', { name: 'Resume the agents…' }).click();
          await page.getByRole('button', { name: 'Confirm' }).click();
          await page
            .locator('.problem', { hasText: 'maintenance mode' })
            .waitFor({ state: 'detached', timeout: 10_000 });
          assert.deepEqual(errors, []);
        } finally {
          await close();
        }
      });

      it('turns a killed node red and shows the failover with its reason; a page on that host reconnects once it is back', async () => {
        const before = await agents.settled();
        const watcher = NODES.find((n) => n !== before) as string;
        const { page, close } = await open(watcher);
        // A page on the killed host's own agent: its stream is lost, and comes back with the agent.
        const orphan = await open(before);
        try {
          await agents.killHost(before);
          await page.locator(`.node.down[data-node="${before}"]`).waitFor({ timeout: 20_000 });
          await page.locator('.history li[data-op="failover"]').first().waitFor({ timeout: 20_000 });
          await shot(page, 'failover');
          const after = await shownPrimary(page);
          assert.notEqual(after, before);
          assert.ok(after !== null, 'a new primary is shown');
          await orphan.page.locator('.conn.bad', { hasText: 'connection lost' }).waitFor({ timeout: 10_000 });
          const up = await c.cli(['up', '--ha']);
          assert.equal(up.code, 0, up.stderr);
          await orphan.page.locator('.conn.ok', { hasText: 'live' }).waitFor({ timeout: 20_000 });
          await orphan.page.locator(`.node.replica[data-node="${before}"]`).waitFor({ timeout: 30_000 });
        } finally {
          await orphan.close();
          await close();
        }
      });
    },
  );
});

describe('`pgrepl dashboard`, for a cluster without agents', () => {
  let c: TestCluster;
  clusterForSuite(['pg1', 'pg2'], (made) => (c = made), { setUp: upCluster });

  it('serves the same page and data on loopback from its own observation, read-only, until stopped', async () => {
    let pid = 0;
    let url = '';
    const run = c.cli(['dashboard', '--port', '0'], {
      onSpawn: (p) => (pid = p),
      onStdout: (out) => (url = /(http:\/\/127\.0\.0\.1:\d+)\/ui/.exec(out)?.[1] ?? url),
    });
    try {
      await waitUntil(() => url !== '', 15_000, 'the dashboard to say where it listens');
      const v = (await (await fetch(`${url}/ui/api/view`)).json()) as {
        actions: boolean;
        status: { primary: string };
        candidates: unknown[];
      };
      assert.equal(v.status.primary, 'pg1');
      assert.equal(v.actions, false, 'no action without agents');
      assert.deepEqual(v.candidates, [], 'no automatic failover to rank');
      await c.sql('pg1', 'CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 1000)');
      await waitUntil(
        async () => {
          const s = (await (await fetch(`${url}/ui/api/series`)).json()) as Record<string, { t: number[] }>;
          return (s['lag_bytes/pg2']?.t.length ?? 0) >= 2 && (s['wal_rate']?.t.length ?? 0) >= 1;
        },
        15_000,
        "pg2's lag and the WAL rate sampled",
      );
      assert.equal((await fetch(`${url}/ui`)).status, 200);
    } finally {
      if (pid) process.kill(pid, 'SIGINT');
    }
    const r = await run;
    assert.equal(r.code, 130, r.stderr);
  });
});
