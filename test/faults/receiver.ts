/**
 * The merchant's webhook receiver, in the harness process: verifies every delivery's signature
 * with src/webhooks/verify.ts and records it. It can be taken down (503 answers or connections
 * reset) to exercise retries.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhook } from '../../src/webhooks/verify.ts';

export interface Delivery {
  webhookId: string;
  eventId: string | null;
  type: string | null;
  invoiceId: string | null;
  valid: boolean;
  error: string | null;
  at: number;
}

export type ReceiverMode = 'up' | '503' | 'reset';

export interface Receiver {
  url: string;
  deliveries: Delivery[];
  /** Called for each valid delivery (benches measure latency with it). */
  onDelivery: ((d: Delivery) => void) | null;
  setSecret(secret: string): void;
  setMode(mode: ReceiverMode): void;
  mode(): ReceiverMode;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  let secret = '';
  let mode: ReceiverMode = 'up';
  const deliveries: Delivery[] = [];
  const r: Receiver = {
    url: '',
    deliveries,
    onDelivery: null,
    setSecret: (s) => { secret = s; },
    setMode: (m) => { mode = m; },
    mode: () => mode,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
  const server: Server = createServer((req, res) => {
    if (mode === 'reset') {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (mode === '503') {
        res.writeHead(503).end('down');
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      const d: Delivery = { webhookId: String(req.headers['webhook-id'] ?? ''), eventId: null, type: null, invoiceId: null, valid: false, error: null, at: Date.now() };
      try {
        const parsed = verifyWebhook(secret, req.headers as Record<string, string>, body) as { id: string; type: string; data: { object: { id?: string } } };
        d.valid = true;
        d.eventId = parsed.id;
        d.type = parsed.type;
        d.invoiceId = parsed.data?.object?.id ?? null;
      } catch (err) {
        d.error = (err as Error).message;
      }
      deliveries.push(d);
      if (d.valid) r.onDelivery?.(d);
      res.writeHead(d.valid ? 200 : 400).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return r;
}
