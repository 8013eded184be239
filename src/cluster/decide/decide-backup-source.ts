import { onlyPrimary, roleOf } from '../observe/observation.js';
import type { ClusterObservation } from '../observe/observation.js';
import { parseLsn } from '../../postgres/lsn.js';

/** Where a backup is taken: the primary starts and stops it; the files come from `copyFrom`. */
export type BackupSource =
  | { readonly ok: true; readonly primary: string; readonly standby: string | null; readonly reason: string }
  | { readonly ok: false; readonly code: 'E_NO_PRIMARY' | 'E_NOT_LOCAL'; readonly reason: string };

/**
 * The nodes a backup uses. With fromReplica, the files come from the replica of this machine that
 * streams from the primary and has replayed the most (pgBackRest waits for the standby to replay
 * up to the backup's start, so the least behind waits least); without one the primary serves them,
 * and the reason says so rather than fail a scheduled backup.
 */
export function decideBackupSource(
  obs: ClusterObservation,
  fromReplica: boolean,
  local: ReadonlySet<string>,
): BackupSource {
  const primary = onlyPrimary(obs.nodes);
  if (!primary)
    return {
      ok: false,
      code: 'E_NO_PRIMARY',
      reason: 'no single running primary to back up: `pgrepl status` shows the nodes',
    };
  const name = primary.node.name;
  if (!local.has(name))
    return {
      ok: false,
      code: 'E_NOT_LOCAL',
      reason: `the primary ${name} runs on ${primary.node.host}, not on this machine: run \`pgrepl backup\` there`,
    };
  if (!fromReplica)
    return { ok: true, primary: name, standby: null, reason: `copied from the primary ${name}` };
  const streaming = obs.nodes.filter(
    (o) =>
      local.has(o.node.name) &&
      roleOf(o) === 'replica' &&
      o.server?.ok === true &&
      o.server.walReceiver?.status === 'streaming' &&
      o.server.walReceiver.senderPort === primary.node.port &&
      o.server.walReceiver.senderHost === primary.node.host,
  );
  const replayed = (o: (typeof streaming)[number]) =>
    o.server?.ok && o.server.instance.replayLsn ? parseLsn(o.server.instance.replayLsn) : 0n;
  const best = [...streaming].sort((a, b) =>
    replayed(b) > replayed(a) ? 1 : replayed(b) < replayed(a) ? -1 : 0,
  )[0];
  if (!best)
    return {
      ok: true,
      primary: name,
      standby: null,
      reason: `backup.fromReplica is on, but no replica of this machine streams from ${name}: copied from the primary`,
    };
  return {
    ok: true,
    primary: name,
    standby: best.node.name,
    reason: `copied from the replica ${best.node.name} (it streams from ${name} and has replayed the most)`,
  };
}
