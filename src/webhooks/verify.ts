/**
 * Verifies a Standard Webhooks request (what a merchant's receiver does; Kassa's own tests use it
 * too). Timing-safe comparison, ±5 minutes timestamp tolerance, accepts any of several `v1,`
 * signatures in the header (key rotation).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { secretBytes } from './signing.ts';

export const TOLERANCE_SECONDS = 5 * 60;

export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

type HeaderBag = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const bag = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(bag).find((k) => k.toLowerCase() === name);
  const v = key === undefined ? undefined : bag[key];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Throws WebhookVerificationError unless `body` carries a valid signature made with `secret`
 * (`whsec_…`). Returns the parsed JSON body. `now` (seconds) is for tests.
 */
export function verifyWebhook(secret: string, headers: HeaderBag, body: string | Uint8Array, now = Math.floor(Date.now() / 1000)): unknown {
  const id = header(headers, 'webhook-id');
  const ts = header(headers, 'webhook-timestamp');
  const sigs = header(headers, 'webhook-signature');
  if (!id || !ts || !sigs) throw new WebhookVerificationError('Missing webhook-id, webhook-timestamp or webhook-signature header');
  if (!/^\d+$/.test(ts)) throw new WebhookVerificationError('Invalid webhook-timestamp');
  const timestamp = Number(ts);
  if (Math.abs(now - timestamp) > TOLERANCE_SECONDS) throw new WebhookVerificationError('Timestamp outside the tolerance window');
  const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  const expected = createHmac('sha256', secretBytes(secret)).update(`${id}.${ts}.${text}`).digest();
  let ok = false;
  for (const part of sigs.split(' ')) {
    const [version, value] = part.split(',', 2);
    if (version !== 'v1' || !value) continue;
    const given = Buffer.from(value, 'base64');
    // Compare every candidate (no early exit) in constant time per candidate.
    if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
  }
  if (!ok) throw new WebhookVerificationError('No matching signature found');
  return JSON.parse(text);
}
