import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { decryptSecret, encryptSecret } from '../../src/crypto/secretbox.ts';

describe('secretbox (AES-256-GCM)', () => {
  const key = randomBytes(32);
  it('round-trips and never contains the plaintext', () => {
    const box = encryptSecret(key, 'whsec_topsecret', 'we_1');
    expect(box.startsWith('v1:')).toBe(true);
    expect(box).not.toContain('topsecret');
    expect(decryptSecret(key, box, 'we_1')).toBe('whsec_topsecret');
    expect(encryptSecret(key, 'same', 'x')).not.toBe(encryptSecret(key, 'same', 'x'));
  });
  it('fails with the wrong key, the wrong context or a tampered box', () => {
    const box = encryptSecret(key, 'secret', 'we_1');
    expect(() => decryptSecret(randomBytes(32), box, 'we_1')).toThrow();
    expect(() => decryptSecret(key, box, 'we_2')).toThrow();
    const raw = Buffer.from(box.slice(3), 'base64');
    raw[raw.length - 1]! ^= 1;
    expect(() => decryptSecret(key, 'v1:' + raw.toString('base64'), 'we_1')).toThrow();
  });
});
