/** A real HTTP webhook receiver on 127.0.0.1 and helpers to feed payments like the chain watchers. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from '../support/db.ts';
import type { Observation } from '../../src/settlement/service.ts';

export interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
  at: number;
  /** The status this receiver answered (null while hanging). */
  status: number | null;
}

export type Mode = 'ok' | 'fail' | 'bad_request' | 'hang' | 'redirect' | 'too_many';

export class Receiver {
  server: http.Server | null = null;
  port = 0;
  received: Received[] = [];
  /** Behaviour per path (default ok). */
  modes = new Map<string, Mode>();
  private hanging: http.ServerResponse[] = [];

  async start(port = 0): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
        const mode = this.modes.get(path) ?? 'ok';
        const status = mode === 'hang' ? null : { ok: 200, fail: 500, bad_request: 400, redirect: 302, too_many: 429 }[mode];
        this.received.push({ path, headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now(), status });
        if (mode === 'hang') {
          this.hanging.push(res);
          return;
        }
        res.writeHead(status!, {
          'content-type': 'text/plain',
          ...(mode === 'redirect' ? { location: 'http://127.0.0.1:1/elsewhere' } : {}),
          ...(mode === 'too_many' ? { 'retry-after': '1' } : {}),
        });
        res.end(mode === 'ok' ? 'thanks' : `nope ${'x'.repeat(3000)}`);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const r of this.hanging) r.destroy();
    this.hanging = [];
    if (!this.server) return;
    const s = this.server;
    this.server = null;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false | null> | T | undefined | false | null, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Feeds blocks and mempool transactions the way the settlement test does. */
export function chainFeeder(ctx: TestContext) {
  const tips: Record<string, number> = { bitcoin: 100, ethereum: 100 };
  let txCounter = 0;
  const hash = (chain: string, h: number) => `${chain}-${h}`.padEnd(64, '0');
  return {
    newTxid: () => (++txCounter).toString(16).padStart(64, '0'),
    tip: (chain: string) => tips[chain]!,
    async mineBlock(chain: string, obs: Omit<Observation, 'block'>[], time = new Date()): Promise<void> {
      const h = ++tips[chain]!;
      const block = { hash: hash(chain, h), height: h, time };
      await ctx.deps.sql.begin(async (tx) => {
        const touched = await ctx.deps.settlement.recordObservations(tx, chain, obs.map((o) => ({ ...o, block })));
        await ctx.deps.settlement.advanceCursor(tx, chain, { height: h, hash: block.hash, prevHash: hash(chain, h - 1), time }, 100);
        const waiting = await ctx.deps.settlement.awaitingConfirmations(tx, chain);
        await ctx.deps.settlement.recompute(tx, [...touched, ...waiting]);
      });
    },
    async seeInMempool(chain: string, obs: Omit<Observation, 'block'>[]): Promise<void> {
      await ctx.deps.sql.begin(async (tx) => {
        const touched = await ctx.deps.settlement.recordObservations(tx, chain, obs.map((o) => ({ ...o, block: null })));
        await ctx.deps.settlement.recompute(tx, touched);
      });
    },
    async rollback(chain: string, toHeight: number): Promise<void> {
      await ctx.deps.sql.begin(async (tx) => {
        const touched = await ctx.deps.settlement.rollbackTo(tx, chain, toHeight, () => false);
        await ctx.deps.settlement.recompute(tx, touched);
      });
      tips[chain] = toHeight;
    },
  };
}

/** Deletes every Redis key of this test's queue prefix: what "Redis was flushed" means for our tests. */
export async function flushQueuePrefix(ctx: TestContext): Promise<number> {
  // One script, so atomic like a real loss of Redis's data: a KEYS then a DEL would let a job
  // added in between keep its hash while its queue entry is deleted, an orphan that no real
  // flush leaves (and that makes BullMQ ignore a later add with the same job id).
  const lua = `local keys = redis.call('keys', ARGV[1])
    for i = 1, #keys, 1000 do redis.call('del', unpack(keys, i, math.min(i + 999, #keys))) end
    return #keys`;
  return Number(await ctx.deps.redis.eval(lua, 0, `${ctx.config.queuePrefix}*`));
}

/** A structural fingerprint: key → type, recursively for plain objects, first element for arrays. */
export function shapeOf(v: unknown): unknown {
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length ? [shapeOf(v[0])] : [];
  if (typeof v === 'object') {
    return Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, shapeOf((v as Record<string, unknown>)[k])]));
  }
  return typeof v;
}
