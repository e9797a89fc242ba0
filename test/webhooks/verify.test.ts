/** verifyWebhook / signing against the `standardwebhooks` reference package, both directions. */
import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { verifyWebhook, WebhookVerificationError } from '../../src/webhooks/verify.ts';
import { generateSecret, signatureHeaders } from '../../src/webhooks/signing.ts';
import { blockedReason } from '../../src/webhooks/ssrf.ts';
import { nextDelayMs, retryAfterMs } from '../../src/webhooks/schedule.ts';
import { DEFAULT_WEBHOOK_RETRY_DELAYS_MS } from '../../src/config.ts';

const body = JSON.stringify({ id: 'evt_1', type: 'invoice.settled', data: { object: { id: 'inv_1', note: 'ünïcødé ✓' } } });
const now = () => Math.floor(Date.now() / 1000);

describe('verifyWebhook', () => {
  it('verifies what standardwebhooks signs', () => {
    const secret = generateSecret();
    const ts = new Date();
    const sig = new Webhook(secret).sign('evt_1', ts, body);
    const headers = { 'webhook-id': 'evt_1', 'webhook-timestamp': String(Math.floor(ts.getTime() / 1000)), 'webhook-signature': sig };
    expect(verifyWebhook(secret, headers, body)).toEqual(JSON.parse(body));
    expect(verifyWebhook(secret, new Headers(headers), Buffer.from(body))).toEqual(JSON.parse(body));
  });

  it('standardwebhooks verifies what Kassa signs, also with two signatures (rotation)', () => {
    const oldSecret = generateSecret();
    const newSecret = generateSecret();
    const headers = signatureHeaders([newSecret, oldSecret], 'evt_1', now(), body);
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(new Webhook(newSecret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(new Webhook(oldSecret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow();
    expect(verifyWebhook(oldSecret, headers, body)).toBeTruthy();
    expect(verifyWebhook(newSecret, headers, body)).toBeTruthy();
  });

  it('rejects a wrong secret, a tampered body, a stale or future timestamp, missing headers', () => {
    const secret = generateSecret();
    const headers = signatureHeaders([secret], 'evt_1', now(), body);
    expect(() => verifyWebhook(generateSecret(), headers, body)).toThrow(WebhookVerificationError);
    expect(() => verifyWebhook(secret, headers, body.replace('settled', 'expired'))).toThrow(/signature/);
    expect(() => verifyWebhook(secret, { ...headers, 'webhook-id': 'evt_2' }, body)).toThrow(/signature/);
    const old = signatureHeaders([secret], 'evt_1', now() - 301, body);
    expect(() => verifyWebhook(secret, old, body)).toThrow(/tolerance/);
    expect(() => new Webhook(secret).verify(body, old)).toThrow();
    const future = signatureHeaders([secret], 'evt_1', now() + 301, body);
    expect(() => verifyWebhook(secret, future, body)).toThrow(/tolerance/);
    expect(verifyWebhook(secret, signatureHeaders([secret], 'evt_1', now() - 290, body), body)).toBeTruthy();
    expect(() => verifyWebhook(secret, { 'webhook-id': 'evt_1' }, body)).toThrow(/Missing/);
    expect(() => verifyWebhook(secret, { ...headers, 'webhook-signature': 'v2,abc v1,' }, body)).toThrow(/signature/);
  });

  it('secrets are whsec_ + base64 of 32 random bytes', () => {
    const s = generateSecret();
    expect(s).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(s.slice(6), 'base64')).toHaveLength(32);
    expect(generateSecret()).not.toBe(s);
  });
});

describe('SSRF address classification', () => {
  it.each([
    '127.0.0.1', '127.255.0.1', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '169.254.169.254',
    '0.0.0.0', '224.0.0.1', '255.255.255.255', '::', '::1', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1',
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::127.0.0.1', '64:ff9b::7f00:1', '64:ff9b::a00:1', '64:ff9b:1::1', '2002:7f00:1::1',
  ])('refuses %s', (ip) => expect(blockedReason(ip)).not.toBeNull());

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e'])('allows %s', (ip) =>
    expect(blockedReason(ip)).toBeNull());
});

describe('retry schedule', () => {
  it('defaults: 10 s, 1 min, 10 min, 1 h, 6 h, then every 12 h, about 3 days in total', () => {
    const d = DEFAULT_WEBHOOK_RETRY_DELAYS_MS;
    expect(d.slice(0, 5)).toEqual([10_000, 60_000, 600_000, 3_600_000, 21_600_000]);
    expect(d.slice(5).every((x) => x === 43_200_000)).toBe(true);
    const total = d.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(2.75 * 86_400_000);
    expect(total).toBeLessThanOrEqual(3 * 86_400_000);
  });

  it('jitters ±10 % and stops after the last delay', () => {
    expect(nextDelayMs([1000, 2000], 1, () => 0)).toBe(900);
    expect(nextDelayMs([1000, 2000], 2, () => 0.9999)).toBe(2200);
    expect(nextDelayMs([1000, 2000], 3)).toBeNull();
  });

  it('parses Retry-After in seconds or as an HTTP date', () => {
    expect(retryAfterMs('5')).toBe(5000);
    const t = Date.now();
    expect(retryAfterMs(new Date(t + 60_000).toUTCString(), t)).toBeGreaterThan(58_000);
    expect(retryAfterMs('soon')).toBeNull();
  });
});
