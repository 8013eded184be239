import { readJournal } from '../../cluster/journal.js';
import { Journal } from '../../cluster/journal.js';
import { runPromote } from '../../cluster/run-promote.js';
import { abandonSwitchover, runSwitchover } from '../../cluster/run-switchover.js';
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
    r.behindBytes === null
      ? `what ${r.oldPrimary ?? 'the old primary'} wrote after ${r.promotedAt} is not on ${r.newPrimary}; \`pgrepl rejoin ${r.oldPrimary ?? '<node>'}\` lists it`
      : `${r.newPrimary} was ${r.behindBytes} bytes behind ${r.oldPrimary}`;
  print(
    o.json,
    r,
    [
      `${r.newPrimary} is the primary (promoted at ${r.promotedAt} in ${(r.ms / 1000).toFixed(1)} s); ${lost}.`,
      r.followers.length > 0 ? `${r.followers.join(', ')} now stream from ${r.newPrimary}.` : '',
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

/** `resume`: finishes an operation that was interrupted, from its journal. */
export async function runResume(g: GlobalOptions, o: { json?: boolean }): Promise<number> {
  const ctx = await commandContext(g);
  return changing(
    ctx,
    'resume',
    async () => {
      const entry = readJournal(ctx.spec.stateDir);
      if (!entry) {
        process.stdout.write('no interrupted operation; nothing to resume\n');
        return 0;
      }
      const journal = new Journal(ctx.spec.stateDir, ctx.env.runAs, entry, entry);
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
        throw new PgreplError(
          'E_NOT_RESUMABLE',
          `an interrupted ${entry.op} is finished by running \`pgrepl ${entry.resume.join(' ')}\` again`,
        );
      }
      return 0;
    },
    { allowInterrupted: true },
  );
}

/** `abandon`: undoes an interrupted operation where that is still safe. */
export async function runAbandon(g: GlobalOptions): Promise<number> {
  const ctx = await commandContext(g);
  return changing(
    ctx,
    'abandon',
    async () => {
      const entry = readJournal(ctx.spec.stateDir);
      if (!entry) {
        process.stdout.write('no interrupted operation; nothing to abandon\n');
        return 0;
      }
      const journal = new Journal(ctx.spec.stateDir, ctx.env.runAs, entry, entry);
      if (entry.op !== 'switchover') {
        throw new PgreplError(
          'E_NOT_RESUMABLE',
          `an interrupted ${entry.op} cannot be undone once started; run \`pgrepl resume\``,
        );
      }
      await abandonSwitchover(ctx, journal, say);
      process.stdout.write(`switchover abandoned; ${entry.facts['oldPrimary']} is the primary again\n`);
      return 0;
    },
    { allowInterrupted: true },
  );
}
