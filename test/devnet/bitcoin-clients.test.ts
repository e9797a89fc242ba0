import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDevnetProcess, type DevnetProcess } from '../support/devnet.ts';
import { BitcoinRpcError, createBitcoinRpcClient } from '../../src/chains/bitcoin/rpc.ts';
import { createEsploraClient } from '../../src/chains/bitcoin/esplora.ts';
import { UpstreamError } from '../../src/errors.ts';

let dn: DevnetProcess;
const servers: Server[] = [];

beforeAll(async () => {
  dn = await startDevnetProcess({ args: ['--premine', '1'] });
});

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await dn?.stop();
});

/**
 * A proxy in front of the devnet that fails the first `failures` requests (HTTP 503 or a dropped
 * connection) and then forwards requests unchanged. `hang: true` never answers at all.
 */
async function flakyProxy(target: string, opts: { failures?: number; mode?: '503' | 'drop'; hang?: boolean }) {
  const state = { requests: 0 };
  const server = createServer((req, res) => {
    state.requests++;
    if (opts.hang) return; // never answers
    if (state.requests <= (opts.failures ?? 0)) {
      if (opts.mode === 'drop') req.socket.destroy();
      else res.writeHead(503).end('Service Unavailable');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', target);
      const headers: Record<string, string> = {};
      if (req.headers.authorization) headers.authorization = req.headers.authorization;
      fetch(url, { method: req.method, headers, body: req.method === 'POST' ? Buffer.concat(chunks) : undefined })
        .then(async (r) => {
          res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' });
          res.end(Buffer.from(await r.arrayBuffer()));
        })
        .catch(() => res.writeHead(502).end());
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return { state, origin: `http://127.0.0.1:${port}` };
}

describe('Bitcoin RPC client', () => {
  it('retries transport failures (503, dropped connections) with backoff and then succeeds', async () => {
    const height = await dn.rpc.getBlockCount();
    const p503 = await flakyProxy(dn.rpcUrl, { failures: 2, mode: '503' });
    const c1 = createBitcoinRpcClient({ url: `${p503.origin}/`, user: dn.rpcUser, password: dn.rpcPassword, retries: 2, retryDelayMs: 10 });
    expect(await c1.getBlockCount()).toBe(height);
    expect(p503.state.requests).toBe(3);

    const drop = await flakyProxy(dn.rpcUrl, { failures: 1, mode: 'drop' });
    const c2 = createBitcoinRpcClient({ url: `${drop.origin}/`, user: dn.rpcUser, password: dn.rpcPassword, retries: 1, retryDelayMs: 10 });
    expect(await c2.getBestBlockHash()).toBe(await dn.rpc.getBestBlockHash());
    expect(drop.state.requests).toBe(2);
  });

  it('gives up after its retries with an UpstreamError naming the node and the method', async () => {
    const p = await flakyProxy(dn.rpcUrl, { failures: 10, mode: '503' });
    const client = createBitcoinRpcClient({ url: `${p.origin}/`, user: 'u', password: 'p', retries: 1, retryDelayMs: 5, name: 'core-main' });
    const err = await client.getBlockHash(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).not.toBeInstanceOf(BitcoinRpcError);
    expect((err as UpstreamError).code).toBe('bitcoin_node_http_error');
    expect((err as UpstreamError).retryable).toBe(true);
    expect((err as Error).message).toContain('core-main');
    expect((err as Error).message).toContain('getblockhash');
    expect(p.state.requests).toBe(2);
  });

  it('times out with a clear error naming the node (without credentials) and the method', async () => {
    const p = await flakyProxy(dn.rpcUrl, { hang: true });
    const url = `${p.origin.replace('http://', 'http://alice:s3cret@')}/`;
    const client = createBitcoinRpcClient({ url, timeoutMs: 150, retries: 1, retryDelayMs: 5 });
    const started = Date.now();
    const err = (await client.getBlockCount().catch((e: unknown) => e)) as UpstreamError;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.code).toBe('bitcoin_node_timeout');
    expect(err.message).toContain('getblockcount');
    expect(err.message).toContain('timed out after 150 ms');
    expect(err.message).toContain(`${p.origin}/`);
    expect(err.message).not.toContain('s3cret');
    expect(client.name).not.toContain('s3cret');
    expect(p.state.requests).toBe(2);
  });

  it('does not retry RPC errors: they surface once as BitcoinRpcError with the node code', async () => {
    const p = await flakyProxy(dn.rpcUrl, {});
    const client = createBitcoinRpcClient({ url: `${p.origin}/`, user: dn.rpcUser, password: dn.rpcPassword, retries: 3, retryDelayMs: 5 });
    const err = (await client.getBlockHeader('00'.repeat(32)).catch((e: unknown) => e)) as BitcoinRpcError;
    expect(err).toBeInstanceOf(BitcoinRpcError);
    expect(err.rpcCode).toBe(-5);
    expect(err.method).toBe('getblockheader');
    expect(err.retryable).toBe(false);
    expect(p.state.requests).toBe(1);
  });

  it('reports an unreachable node as bitcoin_node_unreachable', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const client = createBitcoinRpcClient({ url: `http://127.0.0.1:${port}/`, retries: 1, retryDelayMs: 5, name: 'gone' });
    await expect(client.getBlockCount()).rejects.toMatchObject({ code: 'bitcoin_node_unreachable', message: expect.stringContaining('getblockcount') });
  });

  it('batches through the retrying transport', async () => {
    const p = await flakyProxy(dn.rpcUrl, { failures: 1 });
    const client = createBitcoinRpcClient({ url: `${p.origin}/`, user: dn.rpcUser, password: dn.rpcPassword, retries: 1, retryDelayMs: 5 });
    const [count, nope] = await client.batch([{ method: 'getblockcount' }, { method: 'nosuchmethod' }]);
    expect(count).toEqual({ ok: true, result: await dn.rpc.getBlockCount() });
    expect(nope!.ok).toBe(false);
    if (!nope!.ok) expect(nope!.error.rpcCode).toBe(-32601);
    expect(p.state.requests).toBe(2);
  });
});

describe('Esplora client', () => {
  it('retries a transient failure and then reads the tip', async () => {
    const p = await flakyProxy(dn.esploraUrl, { failures: 2 });
    const client = createEsploraClient({ url: `${p.origin}/esplora`, retries: 2, retryDelayMs: 5 });
    expect(await client.getBlockCount()).toBe(await dn.rpc.getBlockCount());
    expect(p.state.requests).toBe(3);
  });

  it('times out with an error naming the node and the route', async () => {
    const p = await flakyProxy(dn.esploraUrl, { hang: true });
    const client = createEsploraClient({ url: `${p.origin}/esplora`, timeoutMs: 100, retries: 0, name: 'esplora-main' });
    const err = (await client.getBestBlockHash().catch((e: unknown) => e)) as UpstreamError;
    expect(err.code).toBe('bitcoin_node_timeout');
    expect(err.message).toContain('esplora-main');
    expect(err.message).toContain('GET /blocks/tip/hash');
    expect(p.state.requests).toBe(1);
  });
});

describe('the mempool listing read from the bytes (getRawMempoolTxids)', () => {
  it('both clients list exactly the txids getRawMempool lists, in order', async () => {
    await dn.rpc.call('devnet_backgroundmempool', [2_000, 0]);
    try {
      const esplora = createEsploraClient({ url: dn.esploraUrl, retries: 0 });
      for (const client of [dn.rpc, esplora]) {
        const strings = await client.getRawMempool();
        const list = await client.getRawMempoolTxids();
        expect(strings.length).toBeGreaterThanOrEqual(2_000);
        expect(Array.from(list.starts, (s) => Buffer.from(list.bytes.subarray(s, s + 64)).toString('latin1'))).toEqual(strings);
      }
    } finally {
      await dn.rpc.call('devnet_backgroundmempool', [0, 0]);
    }
  });
});
