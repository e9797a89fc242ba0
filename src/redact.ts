/**
 * The one place that knows which parts of a URL are secrets, applied to every log line by the
 * logger (src/logger.ts) to each line as written (JSON text: a match stops at a quote or backslash,
 * so escapes stay intact): request paths, error messages and stacks, URLs in any field.
 *
 * - Path segments that are bearer secrets: the one-time dashboard setup / password-reset link
 *   `/dashboard/setup/<token>`. (Invoice ids in `/pay/:id` and `/v1/public/invoices/:id` are not
 *   secrets: they are meant to be shared with the buyer.)
 * - Query values whose name says they hold a secret (token, secret, password, key, signature,
 *   code, session, auth…), e.g. a webhook URL `https://shop.example/hook?token=…`.
 */

const REDACTED = '[redacted]';

/** Routes whose next path segment is a secret. Add a prefix here when adding such a route. */
export const SECRET_PATH_PREFIXES: readonly string[] = ['/dashboard/setup/'];

const SECRET_PATH_RE = new RegExp(
  `(${SECRET_PATH_PREFIXES.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})[^/?#\\s"'<>\\\\]+`,
  'g',
);

/** A query parameter name that holds a secret. */
const SECRET_QUERY_NAME = /token|secret|passw|api[_-]?key|^key$|signature|^sig$|^code$|otp|session|auth|credential/i;
const QUERY_PAIR_RE = /([?&;])([^=&#\s"'<>]{1,100})=([^&#\s"'<>\\]*)/g;

/** `s` with secret path segments and secret query values replaced by "[redacted]". */
export function redactSecrets(s: string): string {
  if (!s.includes('/') && !s.includes('=')) return s;
  let out = s.replace(SECRET_PATH_RE, `$1${REDACTED}`);
  if (out.includes('=')) {
    out = out.replace(QUERY_PAIR_RE, (all, sep: string, name: string, value: string) => {
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        // keep the raw name
      }
      return value !== '' && SECRET_QUERY_NAME.test(decoded) ? `${sep}${name}=${REDACTED}` : all;
    });
  }
  return out;
}
