import { copyDataDirectory } from '../../postgres/copy-data-dir.js';
import { chownSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PgreplError } from '../../errors.js';
import {
  assertPortFree,
  initdb,
  isAlive,
  killInstance,
  readDataDir,
  reloadInstance,
  signalStop,
  startInstance,
  stopInstance,
  waitPostmasterGone,
} from '../../postgres/instance-control.js';
import { ensureOwnedDir, writeOwnedFile } from '../../postgres/owned-paths.js';
import type { LatestCheckpoint } from '../../postgres/read-controldata.js';
import { runBasebackup } from '../../postgres/run-basebackup.js';
import { runRewind } from '../../postgres/run-rewind.js';
import type { NodeSpec } from '../../cluster-spec/cluster-spec.js';
import { requireSuperuserPassword } from '../context/cluster-context.js';
import type { ClusterContext } from '../context/cluster-context.js';
import { localNodeDisk, logFileOf, MOVED_ASIDE } from '../observe/local-node-disk.js';
import { cloneTempDir } from '../observe/observation.js';
import { readState, recordCreatedDir } from '../store/cluster-state.js';
import type { NodeControl } from './node-control.js';
import { clearRecoveryTargets, writeNodeFiles } from './node-files.js';
import { restoreInto } from './backup-actions.js';
import { monotonicNow } from '../../monotonic-now.js';

/** How long a fast shutdown may take to write its checkpoint (stopInstance waits as long). */
const SHUTDOWN_TIMEOUT_MS = 120_000;

/** NodeControl of a node whose host is this machine: its files and processes, as the run-as user. */
export function localNodeControl(ctx: ClusterContext, node: NodeSpec): NodeControl {
  const { dataDir } = node;
  const { env } = ctx;
  const runAs = env.runAs;
  const record = (dir: string) => recordCreatedDir(ctx.spec.stateDir, ctx.spec.cluster, dir, runAs);
  // PostgreSQL refuses the directory until a killed server is wholly gone: say what is waited for.
  const gone = () =>
    waitPostmasterGone(dataDir, {
      onWait: (why) =>
        ctx.events.emit({ event: 'action', node: node.name, message: `waiting for ${node.name}: ${why}` }),
    });
  const disk = localNodeDisk(ctx, node);
  const control: NodeControl = {
    ...disk,
    async start() {
      if (readDataDir(dataDir).pid !== null) return;
      await gone();
      await assertPortFree(node.host, node.port, node.name);
      await startInstance(env, { dataDir, logFile: logFileOf(ctx, node) });
    },
    async stop(mode) {
      if (readDataDir(dataDir).pid === null) return;
      await stopInstance({ dataDir, mode });
    },
    async shutDownCleanly() {
      const pid = signalStop(dataDir, 'fast');
      const deadline = monotonicNow() + SHUTDOWN_TIMEOUT_MS;
      let before: LatestCheckpoint | null = null;
      for (;;) {
        const now = await disk.latestCheckpoint();
        // Read twice alike: the file is rewritten in place, and a read may meet a write half done.
        if (
          now.state === 'shut down' &&
          before?.state === now.state &&
          before.checkpointLsn === now.checkpointLsn
        )
          return now;
        if (pid === null || !isAlive(pid)) return disk.latestCheckpoint();
        if (monotonicNow() > deadline)
          throw new PgreplError(
            'E_TIMEOUT',
            `${node.name} (PID ${pid}) did not write its shutdown checkpoint within ${SHUTDOWN_TIMEOUT_MS / 1000} s`,
          );
        before = now;
        await new Promise((r) => setTimeout(r, 2));
      }
    },
    waitGone: gone,
    async fence() {
      if (readDataDir(dataDir).pid === null) return 'not running';
      try {
        await stopInstance({ dataDir, mode: 'fast', timeoutSec: ctx.timeouts.fenceStopMs / 1000 });
        if (readDataDir(dataDir).pid === null) return 'stopped';
      } catch {
        // a hung server does not stop: kill it below
      }
      if (await killInstance(dataDir)) return 'killed';
      throw new PgreplError(
        'E_FENCE_FAILED',
        `${node.name} (PID ${readDataDir(dataDir).pid}) survived SIGKILL`,
      );
    },
    async restart() {
      await control.stop('fast');
      await control.start();
    },
    async reload() {
      reloadInstance(dataDir);
    },
    writeConfig: (config) => writeNodeFiles(dataDir, config, runAs),
    makeStandby(config) {
      writeNodeFiles(dataDir, config, runAs);
      writeOwnedFile(join(dataDir, 'standby.signal'), '', 0o600, runAs);
    },
    clearStandbySignal: () => rmSync(join(dataDir, 'standby.signal'), { force: true }),
    clearRecoveryTargets: () => clearRecoveryTargets(dataDir, runAs),
    // Recorded as pgrepl's before it is created, so that a crash cannot leave a directory that
    // pgrepl made but would not delete.
    async initPrimary(config) {
      prepareParent(dataDir, runAs);
      record(dataDir);
      ensureOwnedDir(dataDir, 0o700, runAs);
      await initdb(env, {
        dataDir,
        superuser: ctx.spec.superuser.name,
        password: requireSuperuserPassword(ctx),
        secretsDir: ctx.paths.secretsDir,
        walSegmentSize: ctx.spec.postgres.walSegmentSize,
      });
      writeNodeFiles(dataDir, config, runAs);
      await control.start();
    },
    // Into a sibling temp dir, renamed into place only when complete: an interrupted clone never
    // leaves a data directory that looks valid.
    async clone(req) {
      const tmp = cloneTempDir(dataDir);
      if (existsSync(tmp)) {
        if (!readState(ctx.spec.stateDir, ctx.spec.cluster).createdDirs.includes(tmp)) {
          throw new PgreplError(
            'E_DATA_DIR_FOREIGN',
            `${tmp} exists but pgrepl did not create it; remove it yourself if it is not needed`,
          );
        }
        rmSync(tmp, { recursive: true, force: true });
      }
      prepareParent(dataDir, runAs);
      record(tmp);
      ensureOwnedDir(tmp, 0o700, runAs);
      try {
        if (req.fromRepository) await restoreInto(ctx, node, tmp, req.fromRepository, req.onProgress);
        else if (req.fromDataDir) {
          const from = req.fromDataDir;
          req.onProgress?.({ phase: 'copying', doneKb: 0, totalKb: 0 });
          await from.onUpstream((s) =>
            copyDataDirectory({
              upstream: s,
              sourceDir: from.dir,
              targetDir: tmp,
              label: `pgrepl clone of ${node.name}`,
              runAs,
            }),
          );
          req.onProgress?.({ phase: 'done', doneKb: 0, totalKb: 0 });
        } else
          await runBasebackup(env, {
            targetDir: tmp,
            slot: node.name,
            conninfo: req.conninfo,
            ...(req.onProgress ? { onProgress: req.onProgress } : {}),
            ...(ctx.abort ? { signal: ctx.abort } : {}),
          });
      } catch (err) {
        rmSync(tmp, { recursive: true, force: true });
        throw err;
      }
      writeNodeFiles(tmp, req.config, runAs);
      record(dataDir);
      renameSync(tmp, dataDir);
    },
    moveAside() {
      if (!readDataDir(dataDir).initialized) return null;
      const aside = `${dataDir}${MOVED_ASIDE}${new Date().toISOString().replace(/[:.]/g, '-')}`;
      renameSync(dataDir, aside);
      return aside;
    },
    removeMovedAside(dir) {
      // Only what moveAside() made: never a path that merely was passed in.
      if (!disk.movedAside().includes(dir))
        throw new PgreplError('E_UNKNOWN_NODE', `${dir} is no old copy of ${node.name}'s data directory`);
      rmSync(dir, { recursive: true, force: true });
    },
    async rewind(sourceConninfo) {
      const outcome = await runRewind(env, {
        dataDir,
        sourceConninfo,
        signal: ctx.abort,
        // With an archive, WAL the node needs from before the fork and no longer has comes from it.
        restoreTargetWal: ctx.spec.backup !== undefined,
      });
      // Killed by the abort, pg_rewind "failed": that is no reason to re-clone, but to stop.
      ctx.abort?.throwIfAborted();
      return outcome;
    },
  };
  return control;
}

/** Creates the data directory's parent when missing (owned by the run-as user); never changes an existing one. */
function prepareParent(dataDir: string, runAs: ClusterContext['env']['runAs']): void {
  const parent = dirname(dataDir);
  if (existsSync(parent)) return;
  const firstCreated = mkdirSync(parent, { recursive: true, mode: 0o755 });
  if (!runAs || firstCreated === undefined) return;
  for (let dir = parent; dir.length >= firstCreated.length; dir = dirname(dir))
    chownSync(dir, runAs.uid, runAs.gid);
}
