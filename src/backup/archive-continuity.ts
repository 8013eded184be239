import { formatLsn } from '../postgres/lsn.js';

/** A stretch of WAL the archive lacks: a restore cannot replay past its start. */
export interface ArchiveGap {
  /** Where the missing WAL starts and ends (the end is the start of the next archived segment). */
  readonly fromLsn: string;
  readonly toLsn: string;
  readonly segments: number;
}

const SEGMENT = /(?:^|\/)([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?-[0-9a-f]{40}/;

/** A segment file's number (its position in the WAL, whatever its timeline), or null for another file. */
function segmentNumber(file: string, perLogId: bigint): bigint | null {
  const m = SEGMENT.exec(file);
  // A .partial segment is a former primary's last one, cut short at a promotion: the new timeline's
  // segment of the same number holds that WAL in full.
  if (!m || m[4]) return null;
  return BigInt(`0x${m[2]}`) * perLogId + BigInt(`0x${m[3]}`);
}

/**
 * The WAL missing from the archive between the oldest backup's first segment (`from`, a segment
 * name) and the newest archived segment. A segment counts as archived on any timeline: at a
 * promotion the new timeline starts with the same segment number, holding the old one's WAL up to
 * the switch.
 */
export function archiveGaps(files: readonly string[], from: string, segmentBytes: number): ArchiveGap[] {
  const perLogId = 0x100000000n / BigInt(segmentBytes);
  const present = new Set<bigint>();
  for (const f of files) {
    const n = segmentNumber(f, perLogId);
    if (n !== null) present.add(n);
  }
  const start = segmentNumber(`${from}-${'0'.repeat(40)}`, perLogId);
  if (start === null || present.size === 0) return [];
  const last = [...present].reduce((a, b) => (b > a ? b : a));
  const gaps: ArchiveGap[] = [];
  let gapStart: bigint | null = null;
  for (let n = start; n <= last; n++) {
    if (!present.has(n)) gapStart ??= n;
    else if (gapStart !== null) {
      gaps.push({
        fromLsn: formatLsn(gapStart * BigInt(segmentBytes)),
        toLsn: formatLsn(n * BigInt(segmentBytes)),
        segments: Number(n - gapStart),
      });
      gapStart = null;
    }
  }
  return gaps;
}
