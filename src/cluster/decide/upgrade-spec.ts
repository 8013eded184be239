import type { SecretRef } from '../../cluster-spec/cluster-spec.js';
import { UPGRADE_PUBLICATION, upgradeSubscription } from '../../postgres/upgrade-names.js';

/** What the new cluster's spec is made from: the old spec's document and what the upgrade decided. */
export interface UpgradeSpecInput {
  /** The old spec file as parsed YAML (its keys as the user wrote them). */
  readonly old: Readonly<Record<string, unknown>>;
  /** The old spec file's name: the new spec sits beside it and subscribes to it by that name. */
  readonly oldFile: string;
  readonly cluster: string;
  readonly stateDir: string;
  readonly binDir: string;
  readonly portOffset: number;
  /** The nodes the new cluster has (names of the old spec's nodes). */
  readonly nodes: readonly string[];
  /** The old cluster's passwords: the new one takes the same, so that every client logs in unchanged. */
  readonly superuser: SecretRef;
  readonly replication: SecretRef;
  readonly databases: readonly string[];
  readonly stage: UpgradeSpecStage;
}

/**
 * build: the bare new cluster, refusing its clients' writes (default_transaction_read_only, which
 * logical replication's apply ignores) until the cutover; subscribed: its databases hold the schema,
 * so it publishes them and subscribes to the old cluster; live: cut over, the publication kept for
 * the rollback's reverse subscription; finished: the upgrade's publication gone.
 */
export type UpgradeSpecStage = 'build' | 'subscribed' | 'live' | 'finished';

const secretInput = (ref: SecretRef) => (ref.kind === 'env' ? { env: ref.name } : { file: ref.path });

/**
 * The new cluster's spec document: the old one's settings, access rules, TLS and HA, with its own
 * name, state dir, binaries and ports (plus the offset; a data dir of the old spec gets the
 * cluster's suffix); the same passwords; what `stage` says of publications, subscriptions and
 * refused writes. Backups are left to the user once the upgrade is finished: a new
 * major version needs a stanza of its own. Pure.
 */
export function upgradeSpecDocument(i: UpgradeSpecInput): Record<string, unknown> {
  const { old } = i;
  const oldNodes = (old['nodes'] as readonly Record<string, unknown>[] | undefined) ?? [];
  const suffix = i.cluster.slice(i.cluster.lastIndexOf('-'));
  const nodes = oldNodes
    .filter((n) => i.nodes.includes(n['name'] as string))
    .map((n) => ({
      ...n,
      port: (n['port'] as number) + i.portOffset,
      ...(typeof n['dataDir'] === 'string' ? { dataDir: `${n['dataDir']}${suffix}` } : {}),
    }));
  const postgres = { ...((old['postgres'] as Record<string, unknown> | undefined) ?? {}), binDir: i.binDir };
  const superuser = { ...((old['superuser'] as Record<string, unknown> | undefined) ?? {}) };
  const replication = { ...((old['replication'] as Record<string, unknown> | undefined) ?? {}) };
  const oldLogical = (old['logical'] as Record<string, unknown> | undefined) ?? {};
  const beforeCutover = i.stage === 'build' || i.stage === 'subscribed';
  const settings = {
    ...((old['settings'] as Record<string, unknown> | undefined) ?? {}),
    // From the start: publishing (the way back) then needs no restart, which agents would not do;
    // kept after the finish, where taking it out would be a restart of its own for the user to choose.
    wal_level: 'logical',
    ...(beforeCutover ? { default_transaction_read_only: 'on' } : {}),
  };
  // The old spec's own publications, without the upgrade's (added to it for the way here).
  const own = ((oldLogical['publications'] as readonly { name?: unknown }[] | undefined) ?? []).filter(
    (p) => p.name !== UPGRADE_PUBLICATION,
  );
  const publications =
    i.stage === 'build'
      ? []
      : [
          ...own,
          ...(i.stage === 'finished'
            ? []
            : i.databases.map((database) => ({ name: UPGRADE_PUBLICATION, database, all: true }))),
        ];
  const subscriptions =
    i.stage === 'subscribed'
      ? i.databases.map((database, n) => ({
          name: upgradeSubscription(n + 1),
          database,
          publication: UPGRADE_PUBLICATION,
          from: { spec: i.oldFile },
        }))
      : [];
  const rest = Object.fromEntries(Object.entries(old).filter(([k]) => k !== 'backup' && k !== 'logical'));
  return {
    ...rest,
    cluster: i.cluster,
    stateDir: i.stateDir,
    postgres,
    superuser: { ...superuser, password: secretInput(i.superuser) },
    replication: { ...replication, password: secretInput(i.replication) },
    settings,
    ...(publications.length + subscriptions.length > 0
      ? {
          logical: {
            ...(publications.length > 0 ? { publications } : {}),
            ...(subscriptions.length > 0 ? { subscriptions } : {}),
          },
        }
      : {}),
    nodes,
  };
}
