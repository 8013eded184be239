import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { alignLines, appendLine } from '../align-series.js';
import type { Line } from '../align-series.js';
import { Chart } from './chart.js';
import type { Mark } from './chart.js';
import { initialLang, WORDS } from './i18n.js';
import type { Lang, Words } from './i18n.js';
import type { HistoryRow, NodeRow, SeriesSet, View } from './wire.js';

const WINDOW_MS = 15 * 60 * 1000;

const bytes = (n: number) => {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = Math.abs(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${n < 0 ? '-' : ''}${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
};
const plain = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(1));
const seconds = (n: number) => `${plain(n)} s`;

/** Lines whose key starts with `prefix/`, named by what follows it (a node, a slot). */
function linesOf(series: SeriesSet, prefix: string): { names: string[]; lines: Line[] } {
  const keys = Object.keys(series)
    .filter((k) => k === prefix || k.startsWith(`${prefix}/`))
    .sort();
  return {
    names: keys.map((k) => (k === prefix ? prefix : k.slice(prefix.length + 1))),
    lines: keys.map((k) => series[k] as Line),
  };
}

/** The history within the window, as marks on every chart. */
const marksOf = (history: readonly HistoryRow[], now: number): Mark[] =>
  history
    .map((h) => ({ x: Date.parse(h.at) / 1000, label: `${h.op} ${h.node ?? ''}`.trim() }))
    .filter((m) => m.x * 1000 >= now - WINDOW_MS);

function roleClass(n: NodeRow, leader: string | null | undefined): string {
  if (n.error !== null || n.role === 'unreachable' || n.role === 'stopped' || n.role === 'absent')
    return 'down';
  if (n.role === 'primary') return n.name === leader || leader === undefined ? 'primary' : 'warn';
  return 'replica';
}

function NodeCard(p: { n: NodeRow; view: View; w: Words }) {
  const { n, view, w } = p;
  const ha = view.status.ha;
  const cls = roleClass(n, ha?.leader);
  const warnings = view.nodeWarnings[n.name] ?? [];
  const role =
    cls === 'down'
      ? `${w.down} (${n.role})`
      : n.role === 'primary'
        ? w.primary
        : n.role === 'replica'
          ? w.replica
          : n.role;
  return (
    <article class={`node ${cls}`} data-node={n.name} data-role={n.role} aria-label={`${n.name}: ${role}`}>
      <header>
        <h3>{n.name}</h3>
        <span class="badge">{role}</span>
        {ha?.leader === n.name ? <span class="badge key">{w.leader}</span> : null}
      </header>
      <dl>
        <dt>host</dt>
        <dd>
          {n.host}:{n.port}
        </dd>
        {n.timeline !== null ? (
          <>
            <dt>{w.timeline}</dt>
            <dd>{n.timeline}</dd>
          </>
        ) : null}
        {n.upstream ? (
          <>
            <dt>{w.streamsFrom}</dt>
            <dd>
              {n.upstream} ({n.state})
            </dd>
          </>
        ) : null}
        {n.lagBytes !== null && n.role === 'replica' ? (
          <>
            <dt>{w.lag}</dt>
            <dd>
              {bytes(n.lagBytes)}
              {n.replayLagMs !== null ? `, ${seconds(n.replayLagMs / 1000)}` : ''}
            </dd>
          </>
        ) : null}
        {n.syncState ? (
          <>
            <dt>{w.sync}</dt>
            <dd>{n.syncState}</dd>
          </>
        ) : null}
        {n.agent !== undefined ? (
          <>
            <dt>{w.agent}</dt>
            <dd class="reason">{n.agent ? `${n.agent.decision}: ${n.agent.reason}` : w.noAgent}</dd>
          </>
        ) : null}
      </dl>
      {n.error ? <p class="problem">{n.error}</p> : null}
      {warnings.map((x) => (
        <p class="problem" key={x}>
          {x}
        </p>
      ))}
    </article>
  );
}

type Asked = 'switchover' | 'pause' | 'unpause' | 'restart';

/** What an action will do, in the page's words: shown before it is confirmed. */
function planOf(asked: Asked, view: View, target: string, self: string, w: Words): string[] {
  const leader = view.status.ha?.leader ?? view.status.primary ?? '?';
  const to = target || (view.candidates.find((c) => c.why === null)?.node ?? '?');
  switch (asked) {
    case 'switchover':
      return [
        w.planSwitchover1.replace('{leader}', leader),
        w.planSwitchover2.replace('{to}', to),
        w.planSwitchover3.replace('{leader}', leader).replace('{to}', to),
      ];
    case 'pause':
      return [w.planPause];
    case 'unpause':
      return [w.planUnpause];
    case 'restart':
      return [w.planRestart.replace('{node}', self)];
  }
}

const PATHS: Record<Asked, string> = {
  switchover: '/switchover',
  pause: '/pause',
  unpause: '/unpause',
  restart: '/restart',
};

function Actions(p: { view: View; w: Words; onDone: (text: string) => void }) {
  const { view, w } = p;
  const [token, setToken] = useState(() => sessionStorage.getItem('pgrepl-token') ?? '');
  const [draft, setDraft] = useState('');
  const [asked, setAsked] = useState<Asked | null>(null);
  const [target, setTarget] = useState('');
  const [busy, setBusy] = useState(false);
  if (!view.actions) return <p class="note">{w.readOnly}</p>;
  const self = view.self ?? null;
  const run = async (what: Asked) => {
    setBusy(true);
    try {
      const res = await fetch(PATHS[what], {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(what === 'switchover' && target ? { to: target } : {}),
      });
      const answer = (await res.json()) as { message?: string };
      p.onDone(res.ok ? `${what}: ${w.done}` : `${what}: ${w.failed}: ${answer.message ?? res.status}`);
    } catch (err) {
      p.onDone(`${what}: ${w.failed}: ${(err as Error).message}`);
    } finally {
      setBusy(false);
      setAsked(null);
    }
  };
  if (token === '')
    return (
      <form
        class="token"
        onSubmit={(e) => {
          e.preventDefault();
          sessionStorage.setItem('pgrepl-token', draft);
          setToken(draft);
        }}
      >
        <label>
          {w.token}{' '}
          <input
            type="password"
            autocomplete="off"
            value={draft}
            onInput={(e) => setDraft(e.currentTarget.value)}
          />
        </label>
        <button type="submit">{w.unlock}</button>
        <p class="note">{w.tokenHelp}</p>
      </form>
    );
  const paused = view.status.ha?.paused === true;
  const offered: [Asked, string][] = [
    ['switchover', w.switchover],
    paused ? ['unpause', w.unpause] : ['pause', w.pause],
    ...(self ? [['restart', w.restart.replace('{node}', self)] as [Asked, string]] : []),
  ];
  if (asked === null)
    return (
      <div class="actions">
        {offered.map(([what, label]) => (
          <button type="button" key={what} disabled={busy} onClick={() => setAsked(what)}>
            {label}
          </button>
        ))}
        <button
          type="button"
          onClick={() => {
            sessionStorage.removeItem('pgrepl-token');
            setToken('');
          }}
        >
          {w.lock}
        </button>
      </div>
    );
  return (
    <div class="confirm" role="dialog" aria-label={offered.find(([x]) => x === asked)?.[1]}>
      {asked === 'switchover' ? (
        <label>
          {w.switchoverTo}{' '}
          <select value={target} onChange={(e) => setTarget(e.currentTarget.value)}>
            <option value="">{w.anyReplica}</option>
            {view.candidates.map((c) => (
              <option value={c.node} key={c.node} disabled={c.why !== null}>
                {c.node}
                {c.why ? ` (${c.why})` : ''}
              </option>
            ))}
          </select>
        </label>
      ) : null}
      <ol class="plan">
        {planOf(asked, view, target, self ?? '?', w).map((line) => (
          <li key={line}>{line}</li>
        ))}
      </ol>
      {asked === 'switchover' ? <Candidates view={view} w={w} /> : null}
      <button type="button" class="danger" disabled={busy} onClick={() => void run(asked)}>
        {w.confirm}
      </button>
      <button type="button" onClick={() => setAsked(null)}>
        {w.cancel}
      </button>
    </div>
  );
}

function Candidates(p: { view: View; w: Words }) {
  if (p.view.candidates.length === 0) return <p class="note">{p.w.noCandidates}</p>;
  return (
    <ol class="candidates">
      {p.view.candidates.map((c) => (
        <li key={c.node} class={c.why ? 'held' : 'ok'} data-node={c.node}>
          <strong>{c.node}</strong>
          {c.positionLsn ? ` (${c.positionLsn})` : ''}: {c.why ?? p.w.eligible}
        </li>
      ))}
    </ol>
  );
}

function App() {
  const [lang, setLang] = useState<Lang>(() =>
    initialLang(localStorage.getItem('pgrepl-lang'), navigator.languages),
  );
  const [view, setView] = useState<View | null>(null);
  const [series, setSeries] = useState<SeriesSet>({});
  const [live, setLive] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const w = WORDS[lang];

  useEffect(() => {
    document.documentElement.lang = lang === 'pt' ? 'pt-BR' : 'en';
    localStorage.setItem('pgrepl-lang', lang);
  }, [lang]);

  useEffect(() => {
    const add = (fresh: SeriesSet) =>
      setSeries((old) => {
        const now = Date.now();
        const next: SeriesSet = { ...old };
        for (const [k, line] of Object.entries(fresh))
          next[k] = appendLine(old[k], line, now, WINDOW_MS) as SeriesSet[string];
        return next;
      });
    /** The whole window again: on opening, and after a lost connection (its gap). */
    const full = () =>
      fetch('/ui/api/series')
        .then((r) => r.json() as Promise<SeriesSet>)
        .then(add)
        .catch(() => undefined);
    void fetch('/ui/api/view')
      .then((r) => r.json() as Promise<View>)
      .then(setView)
      .catch(() => undefined);
    void full();
    const source = new EventSource('/ui/api/stream');
    source.addEventListener('open', () => {
      setLive(true);
      void full();
    });
    source.addEventListener('error', () => setLive(false));
    source.addEventListener('view', (e) => {
      const v = JSON.parse((e as MessageEvent<string>).data) as View | { error: string };
      // The stream carries the cluster; what this agent offers came with the first read.
      if ('status' in v)
        setView((old) => ({ ...v, actions: old?.actions ?? false, self: old?.self ?? null }));
    });
    source.addEventListener('series', (e) => add(JSON.parse((e as MessageEvent<string>).data) as SeriesSet));
    return () => source.close();
  }, []);

  const now = Date.now();
  const charts = useMemo(() => {
    const marks = marksOf(view?.history ?? [], now);
    // One span for every chart: from the oldest sample any line holds (a young cluster's minutes
    // fill the width), at most the window and at least a minute, to now.
    const oldest = Math.min(now, ...Object.values(series).map((l) => l.t[0] ?? now));
    const span: [number, number] = [
      Math.min(Math.max(now - WINDOW_MS, oldest), now - 60_000) / 1000,
      now / 1000,
    ];
    const chart = (title: string, prefix: string, format: (v: number) => string) => {
      const { names, lines } = linesOf(series, prefix);
      return { title, names, data: alignLines(lines, now, WINDOW_MS), marks, format, window: span };
    };
    return [
      chart(w.lagBytes, 'lag_bytes', bytes),
      chart(w.lagSeconds, 'lag_seconds', seconds),
      chart(w.walRate, 'wal_rate', (v) => `${bytes(v)}/s`),
      chart(w.commitRate, 'commit_rate', plain),
      chart(w.slotRetained, 'slot_retained', bytes),
    ];
    // Redrawn with each tick's data (the view comes with it), not with the clock.
  }, [series, view?.history, w]);

  if (!view) return <p class="loading">pgrepl…</p>;
  const ha = view.status.ha;
  return (
    <>
      <header class="top">
        <h1>
          {view.cluster}{' '}
          <span class={`badge ${view.status.healthy ? 'ok' : 'bad'}`}>
            {view.status.healthy ? w.healthy : w.unhealthy}
          </span>
        </h1>
        <p class="facts">
          <span>
            {w.mode}: <strong>{view.mode}</strong>
          </span>
          {ha ? (
            <span id="leader">
              {ha.leader ? (
                <>
                  {w.leader}: <strong>{ha.leader}</strong>
                  {ha.leaseSecondsLeft !== null ? ` (${w.leaseLeft} ${ha.leaseSecondsLeft} s)` : ''}
                </>
              ) : (
                <strong class="bad">{w.noLeader}</strong>
              )}
            </span>
          ) : null}
          <span class={`conn ${live ? 'ok' : 'bad'}`} role="status">
            {live ? w.live : w.reconnecting}
          </span>
          <label>
            {w.language}{' '}
            <select value={lang} onChange={(e) => setLang(e.currentTarget.value as Lang)}>
              <option value="en">English</option>
              <option value="pt">Português</option>
            </select>
          </label>
        </p>
        {ha?.paused ? <p class="problem">{w.paused}</p> : null}
        {view.status.warnings
          .filter((x) => !Object.values(view.nodeWarnings).some((ws) => ws.includes(x)))
          .map((x) => (
            <p class="problem" key={x}>
              {x}
            </p>
          ))}
        {message ? (
          <p class="note" role="status">
            {message}
          </p>
        ) : null}
      </header>
      <section aria-labelledby="topology">
        <h2 id="topology">{w.topology}</h2>
        <div class="nodes">
          {view.status.nodes.map((n) => (
            <NodeCard n={n} view={view} w={w} key={n.name} />
          ))}
        </div>
      </section>
      <section aria-labelledby="charts">
        <h2 id="charts">{w.charts}</h2>
        <div class="charts">
          {charts.map((c) => (
            <Chart key={c.title} {...c} empty={w.noData} />
          ))}
        </div>
      </section>
      <section aria-labelledby="why">
        <h2 id="why">{w.whyNotMe}</h2>
        <p class="note">{w.whyNotMeHelp}</p>
        <Candidates view={view} w={w} />
      </section>
      <section aria-labelledby="actions">
        <h2 id="actions">{w.actions}</h2>
        <Actions view={view} w={w} onDone={setMessage} />
      </section>
      <section aria-labelledby="history">
        <h2 id="history">{w.history}</h2>
        {view.history.length === 0 ? (
          <p class="note">{w.noHistory}</p>
        ) : (
          <ol class="history">
            {view.history.map((h) => (
              <li key={`${h.at}${h.op}${h.node ?? ''}`} data-op={h.op}>
                <time dateTime={h.at}>{new Date(h.at).toLocaleString(lang === 'pt' ? 'pt-BR' : 'en')}</time>{' '}
                <strong>{h.op}</strong> {h.node ?? ''}
                {h.from ? ` ← ${h.from}` : ''}
                {h.timeline !== null ? `, ${w.timeline} ${h.timeline}` : ''},{' '}
                {(h.durationMs / 1000).toFixed(1)} s: {h.reason}
              </li>
            ))}
          </ol>
        )}
      </section>
    </>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
