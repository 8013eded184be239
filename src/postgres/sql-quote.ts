/** One SQL identifier, quoted (any name: upper case, dots and quotes stay part of it). */
export const sqlIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** A SQL string literal (standard_conforming_strings on, as in every supported PostgreSQL). */
export const sqlLiteral = (v: string) => `'${v.replace(/'/g, "''")}'`;
