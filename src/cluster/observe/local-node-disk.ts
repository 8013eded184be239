import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { logLength, logSince, logTail, readDataDir } from '../../postgres/instance-control.js';
import { listRecordStarts, readWalEnd } from '../../postgres/list-wal-records.js';
import { walFileStart } from '../../postgres/lsn.js';
import { readControlData, readLatestCheckpoint } from '../../postgres/read-controldata.js';
import { listCommitsAfter, readCommitsAfter } from '../../postgres/run-rewind.js';
import { readOwnWal } from '../../postgres/wal-bytes.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { cloneTempDir } from './observation.js';
import type { NodeDisk } from './node-disk.js';

/** What a re-clone appends to the data directory it moves aside, before the time. */
export const MOVED_ASIDE = '.pgrepl-old-';

/** The node's server log, under the state dir of the machine it runs on. */
export const logFileOf = (ctx: ClusterContext, node: NodeSpec) => join(ctx.paths.logsDir, `${node.name}.log`);

/** NodeDisk of a node whose host is this machine: its own files, read as they are. */
export function localNodeDisk(ctx: ClusterContext, node: NodeSpec): NodeDisk {
  const { dataDir } = node;
  const { env } = ctx;
  const log = logFileOf(ctx, node);
  const disk: NodeDisk = {
    node,
    readDisk(createdByPgrepl) {
      const dir = readDataDir(dataDir);
      return {
        ...dir,
        local: true,
        createdByPgrepl: createdByPgrepl(dataDir),
        cloneLeftover: existsSync(cloneTempDir(dataDir)),
        foreignContent: dir.exists && !dir.initialized && readdirSync(dataDir).length > 0,
        files: {
          postgresqlConf: readOrNull(join(dataDir, 'postgresql.conf')),
          pgHba: readOrNull(join(dataDir, 'pg_hba.conf')),
        },
        movedAside: disk.movedAside(),
      };
    },
    state: () => readDataDir(dataDir),
    hasBackupLabel: () => existsSync(join(dataDir, 'backup_label')),
    movedAside() {
      const prefix = `${basename(dataDir)}${MOVED_ASIDE}`;
      try {
        return readdirSync(dirname(dataDir))
          .filter((f) => f.startsWith(prefix))
          .sort()
          .map((f) => join(dirname(dataDir), f));
      } catch {
        return [];
      }
    },
    readControlData: () => readControlData(env, dataDir, ctx.spec.postgres.walSegmentSize),
    latestCheckpoint: async () =>
      readLatestCheckpoint(dataDir) ??
      (await readControlData(env, dataDir, ctx.spec.postgres.walSegmentSize)),
    readWal: (timeline, lsn, length, seg) => readOwnWal(dataDir, timeline, lsn, length, seg),
    oldestWalSegment: (timeline) => walSegments(dataDir, timeline)[0],
    newestWalTimeline() {
      let newest: number | null = null;
      try {
        for (const f of readdirSync(join(dataDir, 'pg_wal')))
          if (/^[0-9A-F]{24}(\.partial)?$/.test(f))
            newest = Math.max(newest ?? 0, parseInt(f.slice(0, 8), 16));
      } catch {
        return null;
      }
      return newest;
    },
    listRecordStarts: (timeline, from, to) => listRecordStarts(env, dataDir, timeline, from, to),
    async walEnd(c) {
      const newest = walSegments(dataDir, c.timeline).at(-1);
      if (newest === undefined) return null;
      const upTo = walFileStart(newest, c.walSegmentBytes) + BigInt(c.walSegmentBytes);
      return readWalEnd(env, dataDir, c, upTo).catch(() => null);
    },
    commitsAfter: (from, control) =>
      control === undefined
        ? readCommitsAfter(env, dataDir, from)
        : listCommitsAfter(env, dataDir, from, control).catch(() => null),
    logLength: () => logLength(log),
    logSince: (offset) => logSince(log, offset),
    logTail: (lines) => logTail(log, lines),
  };
  return disk;
}

/** The WAL segment files of `timeline` in a data directory's pg_wal, oldest first. */
function walSegments(dataDir: string, timeline: number): string[] {
  const tl = timeline.toString(16).toUpperCase().padStart(8, '0');
  return readdirSync(join(dataDir, 'pg_wal'))
    .filter((f) => /^[0-9A-F]{24}$/.test(f) && f.startsWith(tl))
    .sort();
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}
