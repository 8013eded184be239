import { isAbsolute, join, relative } from 'node:path';

/** A node's data directory as the overlap check sees it: an absolute path, with the machine it is on. */
export interface PlacedDir {
  readonly index: number;
  readonly host: string;
  readonly dir: string;
}

/** What is wrong with one node's data directory, for the spec error at nodes[index].dataDir. */
export interface DirProblem {
  readonly index: number;
  readonly message: string;
}

/**
 * The machine a host names. Every loopback address and `localhost` is this machine: two nodes on
 * 127.0.0.1 and 127.0.0.2 share one disk. Other hosts are compared as written.
 */
export function machineOf(host: string): string {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(h)) return 'loopback';
  return h;
}

/** `inner` is `outer` or lies inside it. */
export function within(inner: string, outer: string): boolean {
  const r = relative(outer, inner);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

/**
 * Data directories that would overlap: equal or nested ones on one machine (moving one aside for
 * a re-clone would move the other, running, one with it), or one that holds or lies in the state
 * dir outside its `data/` folder (the secrets, logs and journal live there). Also names pgrepl
 * gives its own siblings of a data directory (clone temp dir, moved-aside copies). Paths are
 * absolute and normalised (resolve()d), the state dir's too.
 */
export function dataDirOverlaps(dirs: readonly PlacedDir[], state: string): DirProblem[] {
  const problems: DirProblem[] = [];
  const dataRoot = join(state, 'data');
  for (const d of dirs) {
    const dir = d.dir;
    if (within(state, dir)) {
      problems.push({
        index: d.index,
        message: `dataDir ${dir} holds the state dir ${state}; give it a directory of its own`,
      });
    } else if (within(dir, state) && (!within(dir, dataRoot) || dir === dataRoot)) {
      problems.push({
        index: d.index,
        message: `dataDir ${dir} lies in the state dir ${state} (secrets, logs, journal); use ${dataRoot}/<name> or a directory outside it`,
      });
    } else if (/\.pgrepl-(clone$|old-)/.test(dir)) {
      problems.push({
        index: d.index,
        message: `dataDir ${dir} has a name pgrepl uses for its own copies of a data directory`,
      });
    }
    const other = dirs.find(
      (o) =>
        o.index < d.index &&
        machineOf(o.host) === machineOf(d.host) &&
        (within(o.dir, dir) || within(dir, o.dir)),
    );
    if (other !== undefined) {
      const how =
        other.dir === dir
          ? 'is also the dataDir of'
          : within(dir, other.dir)
            ? 'lies inside the dataDir of'
            : 'holds the dataDir of';
      problems.push({
        index: d.index,
        message: `dataDir ${dir} ${how} nodes[${other.index}] (${other.dir}) on the same machine; each node needs a directory of its own, not nested in another's`,
      });
    }
  }
  return problems;
}
