import { createRequire } from 'node:module';
import type cliProgress from 'cli-progress';
import type { ClusterEvent, EventSink } from '../cluster/context/events.js';
import { describeEvent } from './describe-event.js';
import { describeStep } from '../cluster/decide/plan-step.js';
import type { Step } from '../cluster/decide/plan-step.js';
import type { CloneProgress } from '../postgres/run-basebackup.js';

const PHASE_TEXT: Record<CloneProgress['phase'], string> = {
  connecting: 'connecting',
  checkpoint: 'waiting for the primary checkpoint',
  copying: 'copying',
  finishing: 'streaming the last WAL',
  done: 'done',
};

/**
 * Progress for people: bars on a TTY, plain lines otherwise (CI logs, pipes). Writes to stderr so
 * that stdout stays clean for --json.
 */
export function humanEvents(out: NodeJS.WriteStream = process.stderr): EventSink & { close(): void } {
  const tty = out.isTTY === true;
  // Loaded for a terminal only: an agent, whose output is a file, never draws bars (and the module
  // tree, readline with it, was some 0.4 MiB of its resident memory).
  const bars = tty ? (createRequire(import.meta.url)('cli-progress') as typeof cliProgress) : undefined;
  const multibar = bars
    ? new bars.MultiBar(
        {
          stream: out,
          format: ' clone {node} [{bar}] {percentage}% {size} {phase} {elapsed}s',
          hideCursor: true,
          clearOnComplete: false,
        },
        bars.Presets.shades_classic,
      )
    : undefined;
  const clones = new Map<
    string,
    {
      began: number;
      latest: CloneProgress;
      bar?: cliProgress.SingleBar;
      last: string;
      timer?: NodeJS.Timeout;
    }
  >();

  const line = (text: string) => (multibar ? multibar.log(`${text}\n`) : out.write(`${text}\n`));
  const payload = (node: string, p: CloneProgress, began: number) => ({
    node,
    phase: PHASE_TEXT[p.phase],
    size: p.totalKb > 0 ? `${(p.doneKb / 1024).toFixed(1)}/${(p.totalKb / 1024).toFixed(1)} MB` : '',
    elapsed: Math.round((Date.now() - began) / 1000),
  });

  const stepStarted = (step: Step) => {
    if (step.kind !== 'clone') line(`• ${describeStep(step)}`);
  };
  const stepFinished = (step: Step, ms: number, outcome: string | undefined) => {
    const c = clones.get(step.node);
    if (step.kind === 'clone' && c) {
      clearInterval(c.timer);
      c.bar?.update(100, payload(step.node, { phase: 'done', doneKb: 0, totalKb: 0 }, c.began));
      c.bar?.stop();
      line(`✓ cloned ${step.node} in ${(ms / 1000).toFixed(1)} s`);
    } else if (outcome !== undefined || ms >= 1000)
      line(
        `  (${[outcome, ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : undefined].filter(Boolean).join(', ')})`,
      );
  };
  const cloneProgress = (node: string, p: CloneProgress) => {
    let c = clones.get(node);
    if (!c) {
      c = { began: Date.now(), latest: p, last: '' };
      clones.set(node, c);
      if (multibar) {
        c.bar = multibar.create(100, 0, payload(node, p, c.began));
        const state = c;
        // Ticks every second even while pg_basebackup is silent (waiting for a checkpoint).
        state.timer = setInterval(() => state.bar?.update(payload(node, state.latest, state.began)), 1000);
      } else {
        // Without a TTY, a line every 5 s shows a silent phase (a slow checkpoint) is still alive.
        const state = c;
        state.timer = setInterval(() => {
          const now = payload(node, state.latest, state.began);
          line(`  clone ${node}: ${now.phase} ${now.size} (${now.elapsed} s)`.replace(/\s+\(/, ' ('));
        }, 5000);
      }
    }
    c.latest = p;
    const pct = p.totalKb > 0 ? Math.floor((100 * p.doneKb) / p.totalKb) : 0;
    if (c.bar) {
      c.bar.update(pct, payload(node, p, c.began));
      return;
    }
    const key = `${p.phase}:${Math.floor(pct / 25)}`;
    if (key !== c.last) {
      c.last = key;
      const size = payload(node, p, c.began).size;
      line(`  clone ${node}: ${PHASE_TEXT[p.phase]}${p.phase === 'copying' ? ` ${pct}% ${size}` : ''}`);
    }
  };
  return {
    emit(e: ClusterEvent) {
      if (e.event === 'step-started') stepStarted(e.step);
      else if (e.event === 'step-finished') stepFinished(e.step, e.ms, e.outcome);
      else if (e.event === 'clone-progress') cloneProgress(e.node, e.progress);
      else if (e.event === 'note') line(e.message);
      else line(`• ${describeEvent(e)}`);
    },
    close() {
      for (const c of clones.values()) clearInterval(c.timer);
      multibar?.stop();
    },
  };
}
