// Verifies Kassa webhooks (Standard Webhooks signatures) in plain JavaScript: Node 18+, no
// dependencies, no TypeScript.
//   KASSA_WEBHOOK_SECRET=whsec_… PORT=4242 node verify-webhook.mjs
// then point a webhook endpoint (or `kassa listen --forward-to http://localhost:4242/`) at it.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const TOLERANCE_SECONDS = 5 * 60;

/** Returns the parsed event, or throws. `rawBody` must be the body exactly as received. */
export function verifyKassaWebhook(secret, headers, rawBody, now = Math.floor(Date.now() / 1000)) {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (!id || !timestamp || !signatures) throw new Error('missing webhook-id, webhook-timestamp or webhook-signature');
  if (!/^\d+$/.test(timestamp) || Math.abs(now - Number(timestamp)) > TOLERANCE_SECONDS) throw new Error('timestamp outside the 5 minute window');
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${rawBody}`).digest();
  // Several signatures are sent during a secret rotation: any valid one will do.
  const valid = signatures.split(' ').some((entry) => {
    const [version, value] = entry.split(',');
    if (version !== 'v1' || !value) return false;
    const given = Buffer.from(value, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!valid) throw new Error('no valid signature');
  return JSON.parse(rawBody);
}

const secret = process.env.KASSA_WEBHOOK_SECRET;
if (!secret) {
  console.error('Set KASSA_WEBHOOK_SECRET to the endpoint secret (whsec_…).');
  process.exit(2);
}
const seen = new Set(); // webhook-id: a redelivered event must not be processed twice

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    let event;
    try {
      event = verifyKassaWebhook(secret, req.headers, body);
    } catch (err) {
      console.log(`rejected: ${err.message}`);
      res.writeHead(400).end();
      return;
    }
    if (!seen.has(event.id)) {
      seen.add(event.id);
      console.log(`verified ${event.id} ${event.type} ${event.data.object.id} ${event.data.object.status}`);
      // Fulfil the order here when event.type is 'invoice.settled'.
    }
    res.writeHead(204).end();
  });
});
server.listen(Number(process.env.PORT ?? 4242), '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`);
});
