import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { chromium } from 'playwright-core';
import { TestCluster } from '../test/helpers/test-cluster.js';
import { API_OFFSET, haAgents } from '../test/helpers/ha-agents.js';
import { median } from './median.js';
import { writeBenchmarksSection } from './benchmarks-section.js';

/**
 * `npm run bench:dashboard`: what the page costs. Its load to a full render (every node's card and
 * every chart drawn) against a running cluster with agents, and each agent's RSS and CPU with the
 * page closed, then open (its stream once a second). Rewrites the section between the dashboard
 * markers of BENCHMARKS.md.
 */
const NODES = ['pg1', 'pg2', 'pg3'];
const SECONDS = Number(process.env['PGREPL_BENCH_DASHBOARD_SECONDS'] ?? '60');
const LOADS = Number(process.env['PGREPL_BENCH_DASHBOARD_LOADS'] ?? '10');
const WARMUP_MS = 20_000;
const CHARTS = 5;
const CHROMIUM = '/usr/bin/chromium';
const BEGIN = '<!-- bench:dashboard:begin -->';
const END = '<!-- bench:dashboard:end -->';

const log = (s: string) => process.stderr.write(`bench:dashboard: ${s}\n`);

/** RSS, the agent's own (anonymous) memory, and its CPU over `seconds`, from /proc. */
async function measure(pids: readonly number[], seconds: number) {
  const ticks = (pid: number) => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return Number(f[11]) + Number(f[12]);
  };
  const kib = (pid: number, field: string) =>
    Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
  const t0 = pids.map(ticks);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return {
    rssMiB: pids.map((p) => kib(p, 'VmRSS')),
    anonMiB: pids.map((p) => kib(p, 'RssAnon')),
    cpuPct: pids.map((p, i) => ((ticks(p) - (t0[i] as number)) / 100 / seconds) * 100),
  };
}

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new Error(`no ${CHROMIUM}: apt-get install chromium`);
  const started = new Date();
  const loadBefore = loadavg()[0] ?? 0;
  const c = await TestCluster.create(NODES, 'ha:\n  profile: default\n');
  const agents = haAgents(() => c, NODES);
  const browser = await chromium.launch({ executablePath: CHROMIUM });
  try {
    const up = await c.cli(['up', '--ha']);
    if (up.code !== 0) throw new Error(`up --ha failed: ${up.stderr}`);
    const leader = await agents.settled();
    const pids = NODES.map((n) => agents.agentPid(n));
    const url = `http://127.0.0.1:${c.port(leader) + API_OFFSET}/ui`;
    log(`settled on ${leader}; warming up ${WARMUP_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    log(`page closed, ${SECONDS} s`);
    const closed = await measure(pids, SECONDS);

    const loadsMs: number[] = [];
    // The same loads on the page's own clock, from its navigation's start: without the browser
    // making a new context and renderer process for each load.
    const inPageMs: number[] = [];
    for (let i = 0; i < LOADS; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      const t0 = performance.now();
      await page.goto(url);
      await page
        .locator('.node')
        .nth(NODES.length - 1)
        .waitFor();
      await page
        .locator('.u-over')
        .nth(CHARTS - 1)
        .waitFor();
      // Drawn with data: the charts' lines come from the series read at load.
      await page.waitForFunction(`document.querySelectorAll('.chart .empty').length <= ${CHARTS - 3}`);
      loadsMs.push(performance.now() - t0);
      inPageMs.push(Number(await page.evaluate('performance.now()')));
      await context.close();
    }
    log(`loads: ${loadsMs.map((x) => x.toFixed(0)).join(', ')} ms; page open, ${SECONDS} s`);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(url);
    await page
      .locator('.u-over')
      .nth(CHARTS - 1)
      .waitFor();
    const open = await measure(pids, SECONDS);
    const requests: [string, number][] = [];
    for (const path of ['', '/app.js', '/app.css', '/api/view', '/api/series']) {
      const ms: number[] = [];
      for (let i = 0; i < 6; i++) {
        const t0 = performance.now();
        await (await fetch(`${url}${path}`)).arrayBuffer();
        ms.push(performance.now() - t0);
      }
      requests.push([`/ui${path}`, median(ms)]);
    }
    const series = Object.keys(
      (await (await fetch(`${url}/api/series`)).json()) as Record<string, unknown>,
    ).length;
    await context.close();

    const r = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(', ');
    const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}, Node ${process.version}`;
    const section = [
      BEGIN,
      '## The dashboard (`npm run bench:dashboard`)',
      '',
      `- date: ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC (load ${loadBefore.toFixed(2)} at the start); machine: ${machine}; Chromium from Debian, headless`,
      `- 1 primary + 2 replicas, agents on the default profile; the page of ${leader}'s agent (the leader), 1280×800`,
      '',
      '| what | median | max | all |',
      '|---|---|---|---|',
      `| page load → full render (${NODES.length} node cards, ${CHARTS} charts drawn with the 15 minutes' samples), ${LOADS} loads | ${median(loadsMs).toFixed(0)} ms | ${Math.max(...loadsMs).toFixed(0)} ms | ${loadsMs.map((x) => x.toFixed(0)).join(', ')} |`,
      `| same, on the page's clock from its navigation's start (the browser's new context and renderer excluded) | ${median(inPageMs).toFixed(0)} ms | ${Math.max(...inPageMs).toFixed(0)} ms | ${inPageMs.map((x) => x.toFixed(0)).join(', ')} |`,
      '',
      `The page's requests as the agent serves them (median of 6 each): ${requests.map(([path, ms]) => `${path} ${ms.toFixed(0)} ms`).join(', ')}. The view is status's observation of every node, etcd's state and the history; the series are every agent's rings.`,
      '',
      `Each agent over ${SECONDS} s (pg1, pg2, pg3), after ${WARMUP_MS / 1000} s settling: page closed RSS ${r(closed.rssMiB)} MiB (own ${r(closed.anonMiB)} MiB), CPU ${r(closed.cpuPct)} % of a core; page open on ${leader}'s agent RSS ${r(open.rssMiB)} MiB (own ${r(open.anonMiB)} MiB), CPU ${r(open.cpuPct)} %. The series kept: ${series} lines of 900 one-second samples, ${((series * 900 * 16) / 2 ** 20).toFixed(2)} MiB in all (target ≤ 2 MiB per agent).`,
      END,
    ].join('\n');
    writeBenchmarksSection(BEGIN, END, section);
    process.stdout.write(`${section}\n`);
  } finally {
    await browser.close();
    await c.cleanup();
  }
}

await main();
