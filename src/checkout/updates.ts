/**
 * Live invoice updates for the checkout page: ONE dedicated Redis subscriber connection per process
 * (per Deps) on the settlement channel (`INVOICE_CHANNEL`, invoice ids published after each
 * commit), fanned out in memory to the SSE clients watching that invoice. The connection is opened
 * with the first listener and closed a while after the last one leaves.
 */
import type { Redis } from 'ioredis';
import type { Deps } from '../deps.ts';
import { redisConnection } from '../deps.ts';
import type { Logger } from '../logger.ts';
import { INVOICE_CHANNEL } from '../settlement/service.ts';

export interface InvoiceUpdates {
  /** Calls `onChange` whenever the invoice changes; returns the unsubscribe function. */
  subscribe(invoiceId: string, onChange: () => void): () => void;
  /** Resolves once the subscriber connection listens (changes published before that may be missed). */
  ready(): Promise<void>;
  /** Number of listeners (all invoices). */
  listeners(): number;
  close(): Promise<void>;
}

export function createInvoiceUpdates(opts: { redisUrl: string; channel: string; logger: Logger; lingerMs?: number; connect?: (url: string) => Redis }): InvoiceUpdates {
  const byInvoice = new Map<string, Set<() => void>>();
  let count = 0;
  let sub: Redis | null = null;
  let subscribed: Promise<void> | null = null;
  let idleTimer: NodeJS.Timeout | null = null;
  const lingerMs = opts.lingerMs ?? 30_000;

  function open(): void {
    if (sub) return;
    const conn = (opts.connect ?? redisConnection)(opts.redisUrl);
    sub = conn;
    conn.on('error', (err: Error) => opts.logger.warn({ err: err.message }, 'checkout subscriber redis error'));
    conn.on('message', (channel: string, id: string) => {
      if (channel !== opts.channel) return;
      const fns = byInvoice.get(id);
      if (!fns) return;
      for (const fn of [...fns]) {
        try {
          fn();
        } catch (err) {
          opts.logger.warn({ err: (err as Error).message }, 'checkout update listener failed');
        }
      }
    });
    subscribed = conn.subscribe(opts.channel).then(
      () => undefined,
      (err: Error) => opts.logger.warn({ err: err.message }, 'checkout subscribe failed; pages fall back to polling'),
    );
  }

  function shut(): void {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = null;
    if (sub) sub.disconnect();
    sub = null;
    subscribed = null;
  }

  return {
    subscribe(invoiceId, onChange) {
      if (idleTimer) {
        clearTimeout(idleTimer);
        idleTimer = null;
      }
      open();
      let set = byInvoice.get(invoiceId);
      if (!set) byInvoice.set(invoiceId, (set = new Set()));
      set.add(onChange);
      count++;
      let done = false;
      return () => {
        if (done) return;
        done = true;
        const s = byInvoice.get(invoiceId);
        if (s?.delete(onChange)) count--;
        if (s && s.size === 0) byInvoice.delete(invoiceId);
        if (count === 0 && sub && !idleTimer) {
          idleTimer = setTimeout(shut, lingerMs);
          idleTimer.unref();
        }
      };
    },
    async ready() {
      await subscribed;
    },
    listeners: () => count,
    async close() {
      byInvoice.clear();
      count = 0;
      shut();
    },
  };
}

const perDeps = new WeakMap<Deps, InvoiceUpdates>();

/** The process's shared subscriber for these deps (created on first use). */
export function invoiceUpdatesFor(deps: Deps): InvoiceUpdates {
  let u = perDeps.get(deps);
  if (!u) {
    u = createInvoiceUpdates({ redisUrl: deps.config.redisUrl, channel: INVOICE_CHANNEL(deps.config.queuePrefix), logger: deps.logger });
    perDeps.set(deps, u);
  }
  return u;
}

/** Closes the shared subscriber of these deps (call before deps.close() in scripts and tests). */
export async function closeInvoiceUpdates(deps: Deps): Promise<void> {
  const u = perDeps.get(deps);
  perDeps.delete(deps);
  await u?.close();
}
