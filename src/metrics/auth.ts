/**
 * Operator authentication for /metrics and /admin/*: the ADMIN_TOKEN as a bearer token
 * (`Authorization: Bearer <token>`, for Prometheus) or as the password of HTTP Basic auth (any user
 * name, for browsers). Compared in constant time over SHA-256 digests (no length leak).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function adminAuthorized(header: string | null | undefined, token: string): boolean {
  if (!header) return false;
  let presented: string | null = null;
  const bearer = /^Bearer\s+(.+)$/i.exec(header);
  if (bearer) presented = bearer[1]!.trim();
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    presented = colon >= 0 ? decoded.slice(colon + 1) : null;
  }
  if (presented === null) return false;
  return timingSafeEqual(digest(presented), digest(token));
}

/** The challenge sent with a 401, so browsers offer a login prompt. */
export const ADMIN_CHALLENGE = 'Basic realm="kassa-admin", charset="UTF-8"';
