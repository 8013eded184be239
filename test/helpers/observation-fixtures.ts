import type {
  ClusterObservation,
  LocalDataDir,
  NodeObservation,
  ServerAnswer,
} from '../../src/cluster/observe/observation.js';
import { renderNodeConfig } from '../../src/cluster/decide/render-node-config.js';
import type { RenderFacts } from '../../src/cluster/decide/render-node-config.js';
import type { ClusterSpec, NodeSpec } from '../../src/cluster-spec/cluster-spec.js';
import { parseSpec } from '../../src/cluster-spec/parse-spec.js';
import { localPgbackrestPaths } from '../../src/cluster-spec/backup-paths.js';

/** Nodes pg1..pg9 on this machine: they connect from 127.0.0.1 and share the state dir's passfile. */
export const FACTS: RenderFacts = {
  pgMajor: 15,
  hosts: Object.fromEntries(
    Array.from({ length: 9 }, (_, i) => [
      `pg${i + 1}`,
      {
        connectsFrom: '127.0.0.1',
        replicationPassfile: '/s/replication.pgpass',
        tls: undefined,
        pgbackrest: localPgbackrestPaths('/s', `pg${i + 1}`),
      },
    ]),
  ),
};

/** A spec of `n` nodes pg1..pgN on 127.0.0.1:5001.. with data under /d. */
export function specOf(n: number): ClusterSpec {
  const nodes = Array.from(
    { length: n },
    (_, i) => `  - { name: pg${i + 1}, port: ${5001 + i}, dataDir: /d/pg${i + 1} }`,
  );
  return parseSpec(`cluster: t\nstateDir: /s\nnodes:\n${nodes.join('\n')}\n`, 'test.yaml', '/');
}

export type NodeShape =
  | 'absent'
  | 'primary-up'
  | 'primary-down'
  | 'replica-streaming'
  | 'replica-not-streaming'
  | 'replica-down'
  | 'unreachable'
  | 'primary-pending-restart'
  | 'replica-stale-config';

const answer = (inRecovery: boolean, patch: Partial<ServerAnswer> = {}): ServerAnswer => ({
  ok: true,
  instance: {
    inRecovery,
    serverVersionNum: 150000,
    timeline: 1,
    replayLagSeconds: inRecovery ? 0 : null,
    writesRefused: false,
    commits: inRecovery ? null : 0,
    archiver: null,
    currentLsn: inRecovery ? null : '0/3000000',
    receiveLsn: inRecovery ? '0/3000000' : null,
    replayLsn: inRecovery ? '0/3000000' : null,
    replayPaused: inRecovery ? false : null,
  },
  walReceiver: inRecovery
    ? { status: 'streaming', senderHost: '127.0.0.1', senderPort: 5001, slotName: null, receivedTimeline: 1 }
    : null,
  senders: [],
  slots: [],
  replicationRoleExists: inRecovery ? null : true,
  replicationPasswordMatches: inRecovery ? null : true,
  unappliedSettings: [],
  pendingRestart: [],
  restartOnlySettings: ['listen_addresses', 'max_connections', 'port', 'shared_buffers', 'wal_level'],
  replayMoving: null,
  ownTls: null,
  ...patch,
});

/**
 * An observation where each node has the given shape. Configs are what pgrepl renders (so nothing
 * is stale) with `primary` as upstream; a running primary lists slots and senders for the replicas
 * that are streaming.
 */
export function observe(
  spec: ClusterSpec,
  shapes: Record<string, NodeShape>,
  primary = 'pg1',
): ClusterObservation {
  const up = spec.nodes.find((n) => n.name === primary);
  const streaming = Object.entries(shapes)
    .filter(([, s]) => s === 'replica-streaming' || s === 'replica-stale-config')
    .map(([n]) => n);
  const nodes = spec.nodes.map((node): NodeObservation => {
    const given = shapes[node.name] ?? 'absent';
    const shape =
      given === 'primary-pending-restart'
        ? 'primary-up'
        : given === 'replica-stale-config'
          ? 'replica-streaming'
          : given;
    const isPrimaryShape = shape === 'primary-up' || shape === 'primary-down';
    const cfg = renderNodeConfig(spec, FACTS, node, isPrimaryShape ? undefined : (up as NodeSpec));
    const initialized = shape !== 'absent';
    const running =
      shape === 'primary-up' ||
      shape === 'replica-streaming' ||
      shape === 'replica-not-streaming' ||
      shape === 'unreachable';
    return {
      node,
      dataDir: {
        exists: initialized,
        initialized,
        standbySignal: initialized && !isPrimaryShape && shape !== 'unreachable',
        pid: running ? 100 : null,
        local: true,
        createdByPgrepl: initialized,
        cloneLeftover: false,
        foreignContent: false,
        movedAside: [],
        files: !initialized
          ? { postgresqlConf: null, pgHba: null }
          : given === 'replica-stale-config'
            ? { postgresqlConf: cfg.postgresqlConf, pgHba: `${cfg.pgHba}# edited by hand\n` }
            : { postgresqlConf: cfg.postgresqlConf, pgHba: cfg.pgHba },
      },
      fenced: false,
      serverOutsideDataDir: false,
      divergence: null,
      server: !running
        ? null
        : shape === 'unreachable'
          ? { ok: false, error: 'timeout expired' }
          : shape === 'primary-up'
            ? answer(false, {
                pendingRestart: given === 'primary-pending-restart' ? ['shared_buffers'] : [],
                slots: spec.nodes
                  .filter((n) => n.name !== node.name)
                  .map((n) => ({
                    name: n.name,
                    type: 'physical',
                    active: streaming.includes(n.name),
                    restartLsn: '0/3000000',
                    walStatus: 'reserved',
                    retainedBytes: streaming.includes(n.name) ? 0 : 16 * 1024 * 1024,
                  })),
                senders: streaming.map((n) => ({
                  applicationName: n,
                  clientAddr: '127.0.0.1',
                  state: 'streaming',
                  flushLsn: '0/3000000',
                  replayLsn: '0/3000000',
                  lagBytes: 0,
                  writeLagMs: 1,
                  flushLagMs: 1,
                  replayLagMs: 1,
                  syncState: 'async',
                  tls: null,
                })),
              })
            : shape === 'replica-not-streaming'
              ? // Its walreceiver is not connected: the primary lists no sender for it either.
                answer(true, { walReceiver: null })
              : answer(true),
    };
  });
  return { at: 0, nodes };
}

/** `o`'s local data directory with some of its files replaced (a stale or hand-edited config). */
export function withFiles(o: NodeObservation, files: Partial<LocalDataDir['files']>): LocalDataDir {
  if (!o.dataDir.local) throw new Error(`${o.node.name} is not local in this fixture`);
  return { ...o.dataDir, files: { ...o.dataDir.files, ...files } };
}

/** Changes one node's server answer in an observation. */
export function patchServer(
  obs: ClusterObservation,
  name: string,
  change: (s: ServerAnswer) => ServerAnswer,
): ClusterObservation {
  return {
    ...obs,
    nodes: obs.nodes.map((o): NodeObservation =>
      o.node.name === name && o.server?.ok ? { ...o, server: change(o.server) } : o,
    ),
  };
}
