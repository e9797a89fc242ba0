/** The page's one script and one stylesheet, read once at start-up and served from /pay/static/. */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

export const CHECKOUT_JS = readFileSync(new URL('./checkout.client.js', import.meta.url), 'utf8');
export const CHECKOUT_CSS = readFileSync(new URL('./checkout.css', import.meta.url), 'utf8');
/** Content hash used as a cache-busting query (?v=) so the assets can be cached for long. */
export const ASSET_VERSION = createHash('sha256').update(CHECKOUT_JS).update(CHECKOUT_CSS).digest('hex').slice(0, 12);

/** `Cache-Control` for a static asset requested with `?v=`: immutable for a year only when it is the current version. */
export function staticCacheControl(requested: string | undefined, current: string): string {
  return requested === current ? 'public, max-age=31536000, immutable' : 'no-cache';
}
