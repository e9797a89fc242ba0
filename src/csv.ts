/**
 * The one CSV cell encoder (RFC 4180), used by every CSV Kassa writes.
 *
 * - Number columns hold plain decimal numbers (`-12.50` stays a number a spreadsheet can add up).
 *   A value in a number column that is not a plain decimal is encoded as text.
 * - Text cells starting with `=`, `+`, `-`, `@`, tab or CR would be run as a formula by spreadsheet
 *   apps (CSV injection): they get a leading `'`, so `-2+3+cmd|' /C calc'!A0` reads as text.
 * - A cell containing a comma, quote, CR or LF is quoted, quotes doubled.
 */

export type CsvKind = 'text' | 'number';

const PLAIN_NUMBER = /^-?\d+(\.\d+)?$/;
const FORMULA_START = /^[=+\-@\t\r]/;

export function csvCell(value: unknown, kind: CsvKind = 'text'): string {
  const s = value === null || value === undefined ? '' : String(value);
  if (kind === 'number' && PLAIN_NUMBER.test(s)) return s;
  const safe = FORMULA_START.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** One CSV line: `values[i]` is in column `columns[i]`; columns named in `numeric` are number columns. */
export function csvLine(columns: readonly string[], values: readonly unknown[], numeric: ReadonlySet<string>): string {
  return values.map((v, i) => csvCell(v, numeric.has(columns[i] ?? '') ? 'number' : 'text')).join(',');
}
