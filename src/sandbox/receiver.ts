/**
 * The sandbox's built-in webhook receiver: a local HTTP server that verifies each request's
 * Standard Webhooks signature (HMAC-SHA256 with node:crypto, ±5 min timestamp tolerance; no
 * devDependency), logs `[webhooks] invoice.settled inv_… verified`, appends one JSON line per
 * request to `webhooks.log`, and answers 204 (401 when the signature does not verify).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { say } from './procs.ts';

const TOLERANCE_SECONDS = 300;

/** Verifies a Standard Webhooks signature; returns an error message or null when valid. */
export function verifySignature(secret: string, headers: Record<string, string | string[] | undefined>, body: string, now = Math.floor(Date.now() / 1000)): string | null {
  const h = (n: string): string | undefined => {
    const v = headers[n];
    return Array.isArray(v) ? v[0] : v;
  };
  const id = h('webhook-id');
  const ts = h('webhook-timestamp');
  const sigs = h('webhook-signature');
  if (!id || !ts || !sigs) return 'missing webhook-id, webhook-timestamp or webhook-signature';
  if (!/^\d+$/.test(ts) || Math.abs(now - Number(ts)) > TOLERANCE_SECONDS) return 'timestamp outside the tolerance window';
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest();
  let ok = false;
  for (const part of sigs.split(' ')) {
    const [version, value] = part.split(',', 2);
    if (version !== 'v1' || !value) continue;
    const given = Buffer.from(value, 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
  }
  return ok ? null : 'no matching signature';
}

export interface WebhookLogEntry {
  received_at: string;
  verified: boolean;
  error?: string;
  webhook_id: string | null;
  type: string | null;
  invoice_id: string | null;
  status: string | null;
  exception: string | null;
}

export interface WebhookReceiver {
  url: string;
  port: number;
  /** Set once the endpoint exists (its secret comes from POST /v1/webhook_endpoints). */
  setSecret(secret: string | null): void;
  close(): Promise<void>;
}

export async function startWebhookReceiver(opts: { port: number; logFile: string; secret: string | null }): Promise<WebhookReceiver> {
  let secret = opts.secret;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      const error = secret ? verifySignature(secret, req.headers, body) : 'no endpoint secret yet';
      let event: { type?: string; data?: { object?: { id?: string; status?: string; exception?: string | null } } } = {};
      try {
        event = JSON.parse(body) as typeof event;
      } catch {
        /* logged as unparsable below */
      }
      const entry: WebhookLogEntry = {
        received_at: new Date().toISOString(),
        verified: error === null,
        ...(error ? { error } : {}),
        webhook_id: (req.headers['webhook-id'] as string | undefined) ?? null,
        type: event.type ?? null,
        invoice_id: event.data?.object?.id ?? null,
        status: event.data?.object?.status ?? null,
        exception: event.data?.object?.exception ?? null,
      };
      appendFileSync(opts.logFile, JSON.stringify(entry) + '\n', { mode: 0o600 });
      if (error) {
        say('webhooks', `${entry.type ?? '?'} ${entry.invoice_id ?? ''} REJECTED: ${error}`);
        res.writeHead(401, { 'content-type': 'text/plain' }).end(error);
        return;
      }
      say('webhooks', `${entry.type} ${entry.invoice_id} verified${entry.exception ? ` (${entry.exception})` : ''}`);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/webhooks`,
    port,
    setSecret(s) {
      secret = s;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
