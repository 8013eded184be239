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
