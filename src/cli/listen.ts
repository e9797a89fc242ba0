/**
 * `kassa listen --forward-to <url> [--events a,b]`: follows a Kassa server's event log for one
 * merchant (GET /v1/events/stream with that merchant's API key) and POSTs each event to a local URL,
 * signed like a real webhook (Standard Webhooks headers) with a secret printed at start, so a
 * developer can receive webhooks on a laptop Kassa cannot reach. One line per delivery. After a
 * dropped connection it reconnects with Last-Event-ID: no event is skipped or forwarded twice.
 *
 * Only Node built-ins, the signing module and the SDK's SSE parser (@kassa/client's parseSse, one
 * dependency-free file) are imported, so the command starts fast.
 */
import type { ParseArgsConfig } from 'node:util';
import { parseSse } from '../../packages/client/src/sse.ts';
import { generateSecret, signatureHeaders } from '../webhooks/signing.ts';
import { UsageError } from './util.ts';

/** Same shape as the other commands (src/cli/commands.ts). */
interface ListenCommand {
  options?: ParseArgsConfig['options'];
  positionals?: boolean;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<void>;
}

export interface ListenOptions {
  /** Kassa's base URL, e.g. http://localhost:3000. */
  url: string;
  apiKey: string;
  forwardTo: string;
  /** Forward only these event types (all when empty). */
  events: string[];
  /** `whsec_…` signing secret. */
  secret: string;
  /** Start after this event id (default: only new events). */
  after?: string | undefined;
  /** Per-delivery timeout (default 10 s). */
  timeoutMs?: number;
  out?: (line: string) => void;
  signal?: AbortSignal;
}

export interface DeliveryLine {
  at: Date;
  type: string;
  id: string;
  status: number | null;
  ms: number;
  error?: string;
}

export function formatDelivery(d: DeliveryLine): string {
  const status = d.status === null ? `error ${d.error ?? ''}`.trim() : String(d.status);
  return `${d.at.toISOString()}  ${d.type.padEnd(24)}  ${d.id}  -> ${status}  ${d.ms} ms`;
}

/** Fatal answers from the stream endpoint (bad key, missing scope, unknown cursor): no retry. */
class StreamRefused extends Error {}

/** Follows the stream until `signal` aborts or the server refuses; resolves with the last event id. */
export async function listen(o: ListenOptions): Promise<string | undefined> {
  const out = o.out ?? ((line: string) => process.stdout.write(line + '\n'));
  let lastId = o.after;
  let backoff = 500;
  const base = o.url.replace(/\/+$/, '');
  while (!o.signal?.aborted) {
    let connected = false;
    try {
      const headers: Record<string, string> = { authorization: `Bearer ${o.apiKey}`, accept: 'text/event-stream' };
      if (lastId) headers['last-event-id'] = lastId;
      const res = await fetch(`${base}/v1/events/stream`, { headers, signal: o.signal });
      if (res.status >= 400 && res.status < 500) {
        const text = await res.text();
        let msg = text;
        try {
          const e = (JSON.parse(text) as { error: { code: string; message: string } }).error;
          msg = `${e.code}: ${e.message}`;
        } catch { /* not JSON */ }
        throw new StreamRefused(`${base}/v1/events/stream answered ${res.status}: ${msg}`);
      }
      if (!res.ok || !res.body) throw new Error(`${base}/v1/events/stream answered ${res.status}`);
      connected = true;
      backoff = 500;
      out(`${new Date().toISOString()}  connected to ${base}${lastId ? ` (resuming after ${lastId})` : ''}`);
      for await (const ev of parseSse(res.body)) {
        if (ev.event === 'error') throw new StreamRefused(`the server ended the stream: ${ev.data}`);
        if (!ev.id || !ev.data) continue;
        const type = ev.event ?? 'message';
        if (o.events.length === 0 || o.events.includes(type)) {
          out(formatDelivery(await deliver(o, ev.id, type, ev.data)));
        }
        lastId = ev.id;
      }
    } catch (err) {
      if (err instanceof StreamRefused) throw err;
      if (o.signal?.aborted) break;
      out(`${new Date().toISOString()}  ${connected ? 'connection lost' : 'cannot connect'} (${(err as Error).message}); reconnecting`);
    }
    if (o.signal?.aborted) break;
    await sleep(backoff, o.signal);
    backoff = Math.min(backoff * 2, 10_000);
  }
  return lastId;
}

async function deliver(o: ListenOptions, id: string, type: string, body: string): Promise<DeliveryLine> {
  const at = new Date();
  const started = performance.now();
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'kassa-listen',
    ...signatureHeaders([o.secret], id, Math.floor(Date.now() / 1000), body),
  };
  try {
    const res = await fetch(o.forwardTo, { method: 'POST', headers, body, signal: AbortSignal.timeout(o.timeoutMs ?? 10_000), redirect: 'manual' });
    await res.arrayBuffer().catch(() => undefined);
    return { at, type, id, status: res.status, ms: Math.round(performance.now() - started) };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { at, type, id, status: null, ms: Math.round(performance.now() - started), error: e.cause?.code ?? e.name ?? e.message };
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

export const listenCommands: Record<string, ListenCommand> = {
  listen: {
    options: {
      'forward-to': { type: 'string' },
      events: { type: 'string' },
      'api-key': { type: 'string' },
      url: { type: 'string' },
      secret: { type: 'string' },
      after: { type: 'string' },
    },
    async run(v) {
      const forwardTo = typeof v['forward-to'] === 'string' ? v['forward-to'] : '';
      if (!/^https?:\/\/./.test(forwardTo)) throw new UsageError('--forward-to <url> is required (http:// or https://), e.g. --forward-to http://localhost:4242/webhooks');
      const apiKey = (typeof v['api-key'] === 'string' ? v['api-key'] : process.env.KASSA_API_KEY) ?? '';
      if (!apiKey) throw new UsageError('an API key is needed: --api-key kassa_sk_… or KASSA_API_KEY (a key with the invoices:read scope)');
      const url = (typeof v.url === 'string' ? v.url : process.env.KASSA_URL ?? process.env.PUBLIC_URL) ?? 'http://localhost:3000';
      const secret = typeof v.secret === 'string' ? v.secret : process.env.KASSA_LISTEN_SECRET ?? generateSecret();
      if (!secret.startsWith('whsec_')) throw new UsageError('--secret must be a whsec_… secret');
      const events = typeof v.events === 'string' ? v.events.split(',').map((s) => s.trim()).filter(Boolean) : [];
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      process.stdout.write(
        `Forwarding ${events.length ? events.join(', ') : 'all'} events from ${url} to ${forwardTo}\n` +
        `Webhook signing secret: ${secret}\n` +
        '(verify deliveries with it exactly as with a webhook endpoint\'s secret; Ctrl-C to stop)\n',
      );
      try {
        await listen({ url, apiKey, forwardTo, events, secret, after: typeof v.after === 'string' ? v.after : undefined, signal: ac.signal });
      } catch (err) {
        if (err instanceof StreamRefused) {
          process.stderr.write(`kassa: ${err.message}\n`);
          process.exit(1);
        }
        throw err;
      }
    },
  },
};
