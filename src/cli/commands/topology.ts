import { Journal, readJournal } from '../../cluster/store/journal.js';
import type { JournalEntry } from '../../cluster/store/journal.js';
import type { ClusterContext } from '../../cluster/context/cluster-context.js';
import { runRejoin } from '../../cluster/operations/run-rejoin.js';
import { describeDiscarded } from '../../cluster/decide/wal-description.js';
import { consoleReporter } from '../console-reporter.js';
import { runPromote } from '../../cluster/operations/run-promote.js';
import { abandonSwitchover, runSwitchover } from '../../cluster/operations/run-switchover.js';
import { PgreplError } from '../../errors.js';
import { changing, commandContext } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';

const say = (m: string) => process.stderr.write(`• ${m}\n`);
const print = (json: boolean | undefined, value: object, text: string) =>
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);

export interface PromoteOptions {
  auto?: boolean;
  force?: boolean;
  iKnowTheOldPrimaryIsDown?: boolean;
  json?: boolean;
}

/** `promote [NODE] [--auto] [--force [--i-know-the-old-primary-is-down]]` */
export async function runPromoteCommand(
  g: GlobalOptions,
  node: string | undefined,
  o: PromoteOptions,
): Promise<number> {
  if ((node === undefined) === !o.auto) {
    throw new PgreplError(
      'E_REFUSED',
      'name the node to promote, or pass --auto to pick the most advanced replica (not both)',
    );
  }
  const ctx = await commandContext(g);
  const r = await changing(ctx, 'promote', () =>
    runPromote(
      ctx,
      {
        target: node,
        auto: o.auto === true,
        force: o.force === true,
        oldPrimaryIsDown: o.iKnowTheOldPrimaryIsDown === true,
      },
      say,
    ),
  );
  const lost =
    r.oldPrimary === null
      ? 'no old primary to compare with'
      : r.lostOnOldPrimary === null
        ? `what ${r.oldPrimary} wrote after ${r.promotedAt} is not on ${r.newPrimary}; \`pgrepl rejoin ${r.oldPrimary}\` lists it`
        : r.behindBytes === 0
          ? `${r.newPrimary} had everything ${r.oldPrimary} wrote`
          : `${r.newPrimary} was behind ${r.oldPrimary}, which alone has ${describeDiscarded(r.lostOnOldPrimary)}`;
  const table = r.candidates.map(
    (c) =>
      `  ${c.name === r.newPrimary ? '→' : ' '} ${c.name}  wal ${c.positionLsn ?? '-'}  replayed ${c.replayLsn ?? '-'}  ${c.problem === null ? 'healthy' : `not healthy: ${c.problem}`}`,
  );
  print(
    o.json,
    r,
    [
      ...(table.length > 0 ? ['candidates, best first:', ...table] : []),
      `${r.newPrimary} is the primary (promoted at ${r.promotedAt} in ${(r.ms / 1000).toFixed(1)} s); ${lost}.`,
      r.followers.length > 0
        ? `${r.followers.join(', ')} now ${r.followers.length === 1 ? 'streams' : 'stream'} from ${r.newPrimary}.`
        : '',
      r.oldPrimary
        ? `${r.oldPrimary} is fenced: \`pgrepl rejoin ${r.oldPrimary}\` brings it back as a replica.`
        : '',
      r.needRejoin.length > 0 ? `could not follow, rejoin them: ${r.needRejoin.join(', ')}` : '',
    ]
      .filter((l) => l !== '')
      .join('\n'),
  );
  return 0;
}

/** `switchover [--to NODE]` */
export async function runSwitchoverCommand(
  g: GlobalOptions,
  o: { to?: string; json?: boolean },
): Promise<number> {
  const ctx = await commandContext(g);
  const r = await changing(ctx, 'switchover', () => runSwitchover(ctx, o.to, say));
  print(
    o.json,
    r,
    `${r.newPrimary} is the primary; ${r.oldPrimary} ${r.oldPrimaryRejoined ? 'streams from it' : `is fenced: \`pgrepl rejoin ${r.oldPrimary}\``}. ` +
      `Writes were impossible for ${r.writeGapMs} ms; nothing acknowledged was lost (the new primary replayed ${r.oldPrimary}'s shutdown checkpoint ${r.shutdownCheckpoint}).` +
      (r.needRejoin.length > 0 ? `\ncould not follow, rejoin them: ${r.needRejoin.join(', ')}` : ''),
  );
  return 0;
}

/**
 * Runs `fn` on the journal of the interrupted operation, under the lock; says so and exits 0 when
 * nothing was interrupted.
 */
async function onInterrupted(
  g: GlobalOptions,
  verb: 'resume' | 'abandon',
  fn: (ctx: ClusterContext, journal: Journal, entry: JournalEntry) => Promise<void>,
): Promise<number> {
  const ctx = await commandContext(g);
  return changing(
    ctx,
    verb,
    async () => {
      const entry = readJournal(ctx.spec.stateDir);
      if (!entry) {
        process.stdout.write(`no interrupted operation; nothing to ${verb}\n`);
        return 0;
      }
      const journal = new Journal(ctx.spec.stateDir, ctx.env.runAs, entry, entry, undefined, ctx.interrupt);
      await fn(ctx, journal, entry);
      return 0;
    },
    { allowInterrupted: true },
  );
}

/** `resume`: finishes an operation that was interrupted, from its journal. */
export function runResume(g: GlobalOptions, o: { json?: boolean }): Promise<number> {
  return onInterrupted(g, 'resume', async (ctx, journal, entry) => {
    say(`resuming \`pgrepl ${entry.resume.join(' ')}\` from step "${entry.step}"`);
    if (entry.op === 'switchover') {
      const r = await runSwitchover(ctx, undefined, say, journal);
      print(o.json, r, `switchover finished: ${r.newPrimary} is the primary`);
    } else if (entry.op === 'promote') {
      const r = await runPromote(
        ctx,
        { target: undefined, auto: false, force: true, oldPrimaryIsDown: false },
        say,
        journal,
      );
      print(o.json, r, `promotion finished: ${r.newPrimary} is the primary`);
    } else {
      // The journal says whether pg_rewind finished (start the node) or was cut off (re-clone it).
      const reporter = consoleReporter();
      try {
        const r = await runRejoin(
          ctx,
          entry.facts['node'] ?? '',
          {
            reclone: entry.resume.includes('--reclone'),
            keep: entry.resume.includes('--keep')
              ? entry.resume[entry.resume.indexOf('--keep') + 1]
              : undefined,
            reporter,
          },
          say,
          journal,
        );
        print(o.json, r, `rejoin finished: ${r.node} streams from ${r.primary}`);
      } finally {
        reporter.close();
      }
    }
  });
}

/** `abandon`: undoes an interrupted switchover while its target is not promoted yet. */
export function runAbandon(g: GlobalOptions): Promise<number> {
  return onInterrupted(g, 'abandon', async (ctx, journal, entry) => {
    if (entry.op !== 'switchover') {
      throw new PgreplError(
        'E_NOT_RESUMABLE',
        `an interrupted ${entry.op} cannot be undone once started; run \`pgrepl resume\``,
      );
    }
    await abandonSwitchover(ctx, journal, say);
    process.stdout.write(`switchover abandoned; ${entry.facts['oldPrimary']} is the primary again\n`);
  });
}
