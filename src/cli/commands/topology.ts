import { abandonInterrupted, resumeInterrupted } from '../../cluster/operations/resume-operation.js';
import { describeDiscarded } from '../../cluster/decide/wal-description.js';
import { nodeOf } from '../../cluster/context/node-sql.js';
import { PgreplError } from '../../errors.js';
import { changing, commandContext, jsonResult, topologyOf } from '../command-context.js';
import type { GlobalOptions } from '../command-context.js';

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
      'E_USAGE',
      'name the node to promote, or pass --auto to pick the most advanced replica (not both)',
    );
  }
  if (o.iKnowTheOldPrimaryIsDown && !o.force)
    throw new PgreplError(
      'E_USAGE',
      '--i-know-the-old-primary-is-down goes with --force: it lets the promotion go on when the forced stop of the old primary fails',
    );
  const ctx = await commandContext(g);
  if (node !== undefined) nodeOf(ctx, node);
  const topology = await topologyOf(ctx);
  const r = await topology.promote({
    target: node,
    force: o.force === true,
    oldPrimaryIsDown: o.iKnowTheOldPrimaryIsDown === true,
  });
  if (o.json) {
    process.stdout.write(jsonResult(r));
    return 0;
  }
  if (r.via === 'agents') {
    process.stdout.write(
      `${[
        `${r.newPrimary} is the primary, promoted through the agents in ${r.ms} ms${r.forced ? ' (forced)' : ''}.`,
        r.followers.length > 0 ? `${r.followers.join(', ')} now stream from it.` : '',
        r.notFollowing.length > 0
          ? `not following yet: ${r.notFollowing.join(', ')} (their agents follow${r.oldPrimary ? ` and rejoin ${r.oldPrimary} when it is back` : ''}; paused agents do once unpaused)`
          : '',
      ]
        .filter((l) => l !== '')
        .join('\n')}\n`,
    );
    return 0;
  }
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
  process.stdout.write(
    `${[
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
      .join('\n')}\n`,
  );
  return 0;
}

/** `switchover [--to NODE]` */
export async function runSwitchoverCommand(
  g: GlobalOptions,
  o: { to?: string; json?: boolean },
): Promise<number> {
  const ctx = await commandContext(g);
  if (o.to !== undefined) nodeOf(ctx, o.to);
  const r = await (await topologyOf(ctx)).switchover(o.to);
  process.stdout.write(
    o.json
      ? jsonResult(r)
      : r.via === 'agents'
        ? `${r.newPrimary} is the primary, through the agents in ${r.ms} ms; ${r.oldPrimary} ` +
          (r.oldPrimaryRejoined
            ? 'streams from it.\n'
            : 'is not streaming yet: its agent rejoins it (`pgrepl status`).\n')
        : `${r.newPrimary} is the primary; ${r.oldPrimary} ${r.oldPrimaryRejoined ? 'streams from it' : `is fenced: \`pgrepl rejoin ${r.oldPrimary}\``}. ` +
          `Writes were impossible for ${r.writeGapMs} ms; nothing acknowledged was lost (the new primary replayed ${r.oldPrimary}'s shutdown checkpoint ${r.shutdownCheckpoint}).` +
          (r.needRejoin.length > 0 ? `\ncould not follow, rejoin them: ${r.needRejoin.join(', ')}` : '') +
          '\n',
  );
  return 0;
}

/** `resume`: finishes an operation that was interrupted, from its journal. */
export async function runResume(g: GlobalOptions, o: { json?: boolean }): Promise<number> {
  const ctx = await commandContext(g);
  const r = await changing(ctx, 'resume', () => resumeInterrupted(ctx), { allowInterrupted: true });
  if (r.op === 'none') process.stdout.write('no interrupted operation; nothing to resume\n');
  else if (r.op === 'switchover')
    print(o.json, r.result, `switchover finished: ${r.result.newPrimary} is the primary`);
  else if (r.op === 'promote')
    print(o.json, r.result, `promotion finished: ${r.result.newPrimary} is the primary`);
  else print(o.json, r.result, `rejoin finished: ${r.result.node} streams from ${r.result.primary}`);
  return 0;
}

/** `abandon`: undoes an interrupted switchover while its target is not promoted yet. */
export async function runAbandon(g: GlobalOptions): Promise<number> {
  const ctx = await commandContext(g);
  const r = await changing(ctx, 'abandon', () => abandonInterrupted(ctx), { allowInterrupted: true });
  process.stdout.write(
    r === null
      ? 'no interrupted operation; nothing to abandon\n'
      : `switchover abandoned; ${r.primary} is the primary again\n`,
  );
  return 0;
}
