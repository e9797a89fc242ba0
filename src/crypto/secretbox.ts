import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM for secrets Kassa must be able to read back (webhook signing secrets, SMTP
 * passwords). Output: "v1:" + base64(iv(12) | tag(16) | ciphertext). `context` is bound as
 * additional authenticated data so a ciphertext copied to another row/purpose fails to decrypt.
 */
export function encryptSecret(key: Buffer, plaintext: string, context = ''): string {
  if (key.length !== 32) throw new Error('encryption key must be 32 bytes');
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return 'v1:' + Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64');
}

export function decryptSecret(key: Buffer, box: string, context = ''): string {
  if (!box.startsWith('v1:')) throw new Error('unknown secret box version');
  const raw = Buffer.from(box.slice(3), 'base64');
  if (raw.length < 28) throw new Error('secret box is truncated');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAAD(Buffer.from(context, 'utf8'));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
}
