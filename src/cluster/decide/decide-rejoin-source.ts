import { roleOf } from '../observe/observation.js';
import type { ClusterObservation } from '../observe/observation.js';

export type RejoinSource =
  | { kind: 'rejoin'; primary: string; reason: string }
  | {
      kind: 'refuse';
      code: 'E_NO_PRIMARY' | 'E_TWO_PRIMARIES' | 'E_BAD_KEEP' | 'E_IS_PRIMARY';
      reason: string;
      /** The writable nodes, when that is why: each side's WAL is worth showing. */
      sides: string[];
    };

/**
 * Which primary `node` rejoins. Pure. With two writable nodes pgrepl cannot know which history the
 * user wants: it refuses until the survivor is named (`keep`), and then only rejoins the other.
 */
export function decideRejoinSource(
  obs: ClusterObservation,
  node: string,
  keep: string | undefined,
): RejoinSource {
  const writable = obs.nodes.filter((o) => roleOf(o) === 'primary').map((o) => o.node.name);
  const refuse = (
    code: 'E_NO_PRIMARY' | 'E_TWO_PRIMARIES' | 'E_BAD_KEEP' | 'E_IS_PRIMARY',
    reason: string,
    sides: string[] = [],
  ) => ({ kind: 'refuse', code, reason, sides }) as const;
  if (writable.length === 0)
    return refuse('E_NO_PRIMARY', 'no primary answers; start or promote one before rejoining a node');
  if (writable.length > 1) {
    const both = writable.join(' and ');
    if (keep === undefined) {
      const [a, b] = writable.includes(node) ? [node, writable.find((w) => w !== node)] : writable;
      return refuse(
        'E_TWO_PRIMARIES',
        `${both} both accept writes (split brain), and pgrepl cannot know whose history to keep. ` +
          `Name the survivor: \`pgrepl rejoin ${a} --keep ${b}\` keeps ${b}'s writes and throws away ${a}'s since the fork`,
        writable,
      );
    }
    if (!writable.includes(keep))
      return refuse(
        'E_BAD_KEEP',
        `--keep ${keep}: ${keep} does not accept writes; keep one of ${both}`,
        writable,
      );
    if (!writable.includes(node))
      return refuse(
        'E_BAD_KEEP',
        `${node} is not one of the writable nodes ${both}; rejoin the one that is not ${keep} first`,
        writable,
      );
    if (node === keep) return refuse('E_BAD_KEEP', `${node} cannot be both rejoined and kept`, writable);
    return {
      kind: 'rejoin',
      primary: keep,
      reason: `keeping ${keep}'s history, as asked; ${node}'s writes since the fork go`,
    };
  }
  const primary = writable[0] as string;
  if (primary === node)
    return refuse('E_IS_PRIMARY', `${node} is the primary; rejoin takes a node that is not`);
  if (keep !== undefined && keep !== primary)
    return refuse(
      'E_BAD_KEEP',
      `--keep ${keep}: ${keep} is not the primary (${primary} is); --keep is for a split brain`,
    );
  return { kind: 'rejoin', primary, reason: `${primary} is the primary` };
}
