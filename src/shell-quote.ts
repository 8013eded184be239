/** Quotes a value for POSIX sh (and for Compose .env files, which read single quotes literally). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
