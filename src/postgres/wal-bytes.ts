import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { formatLsn, walFileName } from './lsn.js';
import type { SqlSession } from './sql-client.js';

/** Where a WAL position lies: its segment file (under pg_wal) and the offset in it. */
interface WalPlace {
  readonly file: string;
  readonly offset: number;
}

function walPlace(timeline: number, lsn: bigint, segmentBytes: number): WalPlace {
  return {
    file: `pg_wal/${walFileName(timeline, formatLsn(lsn), segmentBytes)}`,
    offset: Number(lsn % BigInt(segmentBytes)),
  };
}

/**
 * `length` bytes of a stopped node's own WAL at `lsn` on `timeline` (never past its segment's
 * end), read from its data directory; null when it has no such segment.
 */
export function readOwnWal(
  dataDir: string,
  timeline: number,
  lsn: bigint,
  length: number,
  segmentBytes: number,
): Buffer | null {
  const place = walPlace(timeline, lsn, segmentBytes);
  let fd: number;
  try {
    fd = openSync(join(dataDir, place.file), 'r');
  } catch {
    return null;
  }
  try {
    const buf = Buffer.alloc(Math.min(length, segmentBytes - place.offset));
    const n = readSync(fd, buf, 0, buf.length, place.offset);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * The same bytes as a running server has them, over SQL (superuser: pg_read_binary_file), so a node
 * can be compared with a primary on another host; null when the server no longer has that segment.
 */
export async function readServerWal(
  s: SqlSession,
  timeline: number,
  lsn: bigint,
  length: number,
  segmentBytes: number,
): Promise<Buffer | null> {
  const place = walPlace(timeline, lsn, segmentBytes);
  const [row] = await s.query<{ b: Buffer | null }>('SELECT pg_read_binary_file($1, $2, $3, true) AS b', [
    place.file,
    place.offset,
    Math.min(length, segmentBytes - place.offset),
  ]);
  return row?.b ?? null;
}
