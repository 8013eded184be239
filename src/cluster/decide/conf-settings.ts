/**
 * The settings a postgresql.conf sets, as `name = 'value'` lines (pgrepl writes every value quoted);
 * later lines win, as in PostgreSQL. Lines of another shape are not settings pgrepl wrote.
 */
export function confSettings(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*'((?:[^'\\]|''|\\.)*)'/.exec(line);
    if (m)
      settings.set(
        (m[1] as string).toLowerCase(),
        (m[2] as string).replace(/''/g, "'").replace(/\\(.)/g, '$1'),
      );
  }
  return settings;
}

/** Names of the settings whose value differs between two postgresql.conf texts (set, changed or removed). */
export function changedSettings(before: string | null, after: string): string[] {
  const a = confSettings(before ?? '');
  const b = confSettings(after);
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((n) => a.get(n) !== b.get(n)).sort();
}
