import type { StanzaInfo } from '../../backup/backup-info.js';
import type { Step } from './plan-step.js';
import type { PlanOptions } from './plan-up.js';

/** What `up` does about the cluster's stanza in the repository. */
export type StanzaDecision =
  | { readonly kind: 'ok' }
  | { readonly kind: 'create'; readonly reason: string }
  | {
      readonly kind: 'refuse';
      readonly code: 'E_STANZA_MISMATCH' | 'E_BACKUP_REPO';
      readonly reason: string;
    };

/**
 * Whether the repository's stanza is this cluster's. `systemId` is the cluster's database system
 * identifier, null while no node holds data yet: then any stanza of that name is another
 * database's (an earlier cluster of the same name, or another one sharing the repository), and
 * archiving into it would mix two histories.
 */
export function decideStanza(stanza: string, info: StanzaInfo, systemId: string | null): StanzaDecision {
  if (info.status === 'missing')
    return { kind: 'create', reason: `the repository has no stanza ${stanza} yet` };
  if (info.status === 'error')
    return {
      kind: 'refuse',
      code: 'E_BACKUP_REPO',
      reason: `the repository's stanza ${stanza} cannot be used: ${info.message}`,
    };
  const theirs = info.systemIds.at(-1);
  if (theirs !== undefined && theirs === systemId) return { kind: 'ok' };
  return {
    kind: 'refuse',
    code: 'E_STANZA_MISMATCH',
    reason:
      `the repository already has a stanza ${stanza} of another database (system id ${theirs ?? 'unknown'}` +
      `${systemId === null ? ', and this cluster has no data yet' : `, this cluster's is ${systemId}`}): ` +
      'point backup.repo.path at another directory, or, if its backups are not needed, delete that stanza ' +
      `(pgbackrest --stanza=${stanza} stanza-delete) or the directory`,
  };
}

/**
 * With `backup.clone: backup`, the plan's clones restore the repository's newest backup instead of
 * copying the primary; while the repository holds none yet, they copy the primary, and a note says so.
 */
export function cloneSources(
  steps: readonly Step[],
  clone: 'primary' | 'backup',
  hasBackup: boolean,
): { steps: Step[]; notes: string[] } {
  const clones = steps.filter((s) => s.kind === 'clone');
  if (clone === 'primary' || clones.length === 0) return { steps: [...steps], notes: [] };
  if (!hasBackup)
    return {
      steps: [...steps],
      notes: [
        `backup.clone is backup, but the repository holds no backup yet: ${clones.map((s) => s.node).join(', ')} copied from the primary`,
      ],
    };
  return {
    steps: steps.map((s) => (s.kind === 'clone' ? { ...s, source: 'repository' as const } : s)),
    notes: [],
  };
}

/**
 * The stanza step of `up`, or none: made from the primary once it runs with archiving on (the step
 * comes last), by `up` only, and not by `start NODE`.
 */
export function stanzaSteps(decided: StanzaDecision, primary: string | null, o: PlanOptions): Step[] {
  if (decided.kind !== 'create' || primary === null || !o.create || o.only !== undefined) return [];
  return [{ kind: 'create-stanza', node: primary, reason: decided.reason }];
}
