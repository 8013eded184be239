/** A WAL position as PostgreSQL prints it ("16/B374D848"), as a bigint for arithmetic. */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) throw new Error(`not an LSN: ${text}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** Formats a bigint WAL position the way PostgreSQL does. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** a − b in bytes; null when either is unknown. */
export function lsnDiff(a: string | null, b: string | null): number | null {
  if (a === null || b === null) return null;
  return Number(parseLsn(a) - parseLsn(b));
}

/** The name of the WAL segment file holding `lsn` on `timeline`, as pg_walfile_name() gives it. */
export function walFileName(timeline: number, lsn: string, segmentBytes: number): string {
  const segno = parseLsn(lsn) / BigInt(segmentBytes);
  const perLogId = 0x100000000n / BigInt(segmentBytes);
  const hex8 = (n: bigint) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex8(BigInt(timeline))}${hex8(segno / perLogId)}${hex8(segno % perLogId)}`;
}

/** Where the WAL segment file `name` (walFileName's form) starts. */
export function walFileStart(name: string, segmentBytes: number): bigint {
  const perLogId = 0x100000000n / BigInt(segmentBytes);
  const segno = BigInt(`0x${name.slice(8, 16)}`) * perLogId + BigInt(`0x${name.slice(16, 24)}`);
  return segno * BigInt(segmentBytes);
}
