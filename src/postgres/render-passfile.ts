/** One ~/.pgpass line's fields; `*` matches anything. */
export interface PassfileEntry {
  host: string;
  port: string;
  database: string;
  user: string;
  password: string;
}

/** Renders a libpq password file; `:` and `\` are escaped as libpq requires. */
export function renderPassfile(entries: readonly PassfileEntry[]): string {
  const esc = (s: string) => (s === '*' ? s : s.replace(/\\/g, '\\\\').replace(/:/g, '\\:'));
  return (
    entries.map((e) => [e.host, e.port, e.database, e.user, e.password].map(esc).join(':')).join('\n') + '\n'
  );
}
