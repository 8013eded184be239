import type { GuardRefusal } from './topology-guard.js';

/** One step of a plan; every step says why it is needed, and that reason is printed and logged. */
export type Step =
  /** node: the cluster's name (the CA is the cluster's, not a node's). */
  | { kind: 'issue-ca'; node: string; reason: string }
  | { kind: 'issue-cert'; node: string; reason: string }
  | { kind: 'init-primary'; node: string; reason: string }
  | { kind: 'write-config'; node: string; upstream: string | null; reason: string }
  /** upstream: the primary a replica will stream from (its history is checked against it first); null for a primary. */
  | { kind: 'start'; node: string; upstream: string | null; reason: string }
  | { kind: 'restart'; node: string; reason: string }
  /** The primary's restart as a switchover to `to`: the old primary comes back as its replica. */
  | { kind: 'switchover'; node: string; to: string; reason: string }
  | { kind: 'ensure-replication-role'; node: string; reason: string }
  | { kind: 'create-slot'; node: string; slot: string; reason: string }
  /** source 'repository': restored from the newest backup (no load on the upstream), then streams from it. */
  | { kind: 'clone'; node: string; upstream: string; reason: string; source?: 'repository' }
  | { kind: 'wait-streaming'; node: string; upstream: string; reason: string }
  /** node: the primary the stanza is made from; its WAL must reach the repository. */
  | { kind: 'create-stanza'; node: string; reason: string }
  /** node: the primary; name: the publication or subscription of the spec, in `database`. */
  | { kind: 'logical'; node: string; action: LogicalAction; name: string; database: string; reason: string };

/** What a `logical` step does on the primary. */
export type LogicalAction =
  | 'create-publication'
  | 'set-publication-tables'
  | 'create-subscription'
  | 'set-subscription-publication'
  | 'resync-subscription';

export type StepKind = Step['kind'];

/** A plan: the steps in order, or a refusal that says why nothing may be done. */
export interface Plan {
  readonly primary: string | null;
  readonly steps: readonly Step[];
  /** Things the plan deliberately leaves alone, with why. */
  readonly notes: readonly string[];
  readonly refusal: {
    code: 'E_NO_PRIMARY' | 'E_PRIMARY_UNREACHABLE' | 'E_DATA_DIR_FOREIGN' | GuardRefusal['code'];
    reason: string;
  } | null;
}

/** Steps of these kinds that follow each other run in parallel (they touch different nodes). */
export const PARALLEL_KINDS: ReadonlySet<StepKind> = new Set(['clone', 'start', 'wait-streaming']);

/** A step's short name, unique within a plan ("clone pg2", "create-slot pg1 pg3"), as failpoints name it. */
export function stepName(s: Step): string {
  if (s.kind === 'create-slot') return `${s.kind} ${s.node} ${s.slot}`;
  if (s.kind === 'logical') return `${s.action} ${s.database} ${s.name}`;
  return `${s.kind} ${s.node}`;
}

/** A one-line description of a step for `--dry-run` and progress output. */
export function describeStep(s: Step): string {
  switch (s.kind) {
    case 'issue-ca':
      return `make the certificate authority of cluster ${s.node} (tls: auto)`;
    case 'issue-cert':
      return `issue ${s.node}'s certificate, signed by the cluster's CA (a running server reloads it)`;
    case 'init-primary':
      return `initialise ${s.node} as the primary (initdb with checksums, SCRAM)`;
    case 'write-config':
      return `write postgresql.conf and pg_hba.conf of ${s.node}`;
    case 'start':
      return `start ${s.node}`;
    case 'restart':
      return `restart ${s.node}`;
    case 'switchover':
      return `switch over from ${s.node} to ${s.to}: ${s.node} restarts as its replica (writes wait for the switchover, not for a restart)`;
    case 'ensure-replication-role':
      return `ensure the replication role on ${s.node} (made, or given the spec's password, only if needed)`;
    case 'create-slot':
      return `ensure physical slot ${s.slot} on ${s.node} (made only if missing)`;
    case 'clone':
      return s.source === 'repository'
        ? `clone ${s.node} from the backup repository (pgbackrest restore --type=standby), then stream from ${s.upstream}`
        : `clone ${s.node} from ${s.upstream} (pg_basebackup -X stream -R -S ${s.node})`;
    case 'wait-streaming':
      return `wait until ${s.node} streams from ${s.upstream}`;
    case 'create-stanza':
      return `create the backup stanza from ${s.node} and check that its WAL reaches the repository (pgbackrest stanza-create, check)`;
    case 'logical':
      return {
        'create-publication': `create publication ${s.name} in ${s.database} on ${s.node}, and let the replication role read its tables`,
        'set-publication-tables': `set the tables of publication ${s.name} in ${s.database} on ${s.node}`,
        'create-subscription': `create subscription ${s.name} in ${s.database} on ${s.node} (its publisher makes the slot; the initial copy starts)`,
        'set-subscription-publication': `point subscription ${s.name} in ${s.database} on ${s.node} at its publication`,
        'resync-subscription': `re-sync subscription ${s.name} in ${s.database} on ${s.node}: its tables emptied and copied again through a new slot on the publisher's primary`,
      }[s.action];
  }
}
