/**
 * The Bitcoin regtest devnet HTTP server: Bitcoin Core JSON-RPC on `/` (and `/wallet/<name>`),
 * with HTTP basic auth, and Esplora REST under `/esplora`. In-memory only: all state is lost when
 * it stops. A test and sandbox tool; Kassa's watcher talks to it exactly as to a real bitcoind.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { DevnetChain } from './chain.ts';
import { callDevnetMethod } from './rpc-methods.ts';
import { handleEsplora } from './esplora.ts';
import { RPC, RpcError, toJson } from './util.ts';

export interface BitcoinDevnetOptions {
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** RPC basic-auth user; default "kassa". */
  rpcUser?: string;
  /** RPC basic-auth password; default "kassa". */
  rpcPassword?: string;
  /** BIP32 seed (hex) of the devnet wallet; a fixed default makes addresses deterministic. */
  seed?: string;
  /** Blocks mined to the wallet at start so it has mature coins; default 101, 0 for none. */
  premine?: number;
  /** Accept replacements of non-signalling mempool transactions (full RBF). Default false. */
  fullRbf?: boolean;
}

export interface BitcoinDevnet {
  /** JSON-RPC URL (no credentials in it). */
  url: string;
  /** Esplora REST base URL. */
  esploraUrl: string;
  port: number;
  rpcUser: string;
  rpcPassword: string;
  chain: DevnetChain;
  stop(): Promise<void>;
}

const DEFAULT_PREMINE = 101;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

interface Reply {
  status: number;
  body: string;
}

/** One JSON-RPC request object → Core's reply object (legacy 1.0 or 2.0) and the HTTP status it implies. */
function runOne(chain: DevnetChain, req: unknown): { reply: Record<string, unknown> | null; status: number } {
  if (req === null || typeof req !== 'object' || Array.isArray(req)) {
    return { reply: { result: null, error: { code: RPC.INVALID_REQUEST, message: 'Invalid Request object' }, id: null }, status: 400 };
  }
  const r = req as Record<string, unknown>;
  const v2 = r.jsonrpc === '2.0';
  const id = r.id === undefined ? null : r.id;
  const wrap = (result: unknown, error: { code: number; message: string } | null): Record<string, unknown> =>
    v2 ? (error ? { jsonrpc: '2.0', error, id } : { jsonrpc: '2.0', result, id }) : { result: error ? null : result, error, id };
  let status = 200;
  try {
    if (typeof r.method !== 'string') throw new RpcError(RPC.INVALID_REQUEST, 'Method must be a string');
    if (r.params !== undefined && r.params !== null && typeof r.params !== 'object') {
      throw new RpcError(RPC.INVALID_REQUEST, 'Params must be an array or object');
    }
    const result = callDevnetMethod(chain, r.method, r.params);
    if (v2 && r.id === undefined) return { reply: null, status: 204 }; // notification
    return { reply: wrap(result, null), status };
  } catch (err) {
    const e = err instanceof RpcError ? err : new RpcError(RPC.MISC_ERROR, err instanceof Error ? err.message : String(err));
    if (!v2) status = e.code === RPC.INVALID_REQUEST ? 400 : e.code === RPC.METHOD_NOT_FOUND ? 404 : 500;
    if (v2 && r.id === undefined) return { reply: null, status: 204 };
    return { reply: wrap(null, { code: e.code, message: e.message }), status };
  }
}

function handleRpc(chain: DevnetChain, body: string): Reply {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { status: 500, body: `${toJson({ result: null, error: { code: RPC.PARSE_ERROR, message: 'Parse error' }, id: null })}\n` };
  }
  if (Array.isArray(parsed)) {
    // Batch: HTTP 200, one reply per request (2.0 notifications omitted), in order.
    const replies = parsed.map((r) => runOne(chain, r).reply).filter((r) => r !== null);
    return { status: 200, body: `${toJson(replies)}\n` };
  }
  const { reply, status } = runOne(chain, parsed);
  return { status, body: reply === null ? '' : `${toJson(reply)}\n` };
}

/**
 * Starts the devnet. The wallet gets `premine` (default 101) blocks so 1 coinbase (50 BTC) is
 * mature and spendable.
 */
export async function startBitcoinDevnet(opts: BitcoinDevnetOptions = {}): Promise<BitcoinDevnet> {
  const host = opts.host ?? '127.0.0.1';
  const rpcUser = opts.rpcUser ?? 'kassa';
  const rpcPassword = opts.rpcPassword ?? 'kassa';
  const chain = new DevnetChain({ ...(opts.seed ? { seed: opts.seed } : {}), ...(opts.fullRbf ? { fullRbf: true } : {}) });
  const premine = opts.premine ?? DEFAULT_PREMINE;
  if (premine > 0) chain.mine(premine, chain.wallet.newKey().script);
  const expectedAuth = `Basic ${Buffer.from(`${rpcUser}:${rpcPassword}`).toString('base64')}`;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://devnet');
      const body = await readBody(req);
      if (url.pathname === '/esplora' || url.pathname.startsWith('/esplora/')) {
        const r = handleEsplora(chain, req.method ?? 'GET', url.pathname.slice('/esplora'.length), body);
        res.writeHead(r.status, { 'Content-Type': r.contentType });
        res.end(r.body);
        return;
      }
      if (url.pathname !== '/' && !url.pathname.startsWith('/wallet/')) {
        res.writeHead(404).end();
        return;
      }
      if (!safeEqual(req.headers.authorization ?? '', expectedAuth)) {
        // Like bitcoind: 401, empty body, Basic challenge.
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="jsonrpc"' }).end();
        return;
      }
      if (req.method !== 'POST') {
        res.writeHead(405, { 'Content-Type': 'text/html' }).end('JSONRPC server handles only POST requests');
        return;
      }
      const reply = handleRpc(chain, body);
      if (reply.status === 204) {
        res.writeHead(204).end();
        return;
      }
      res.writeHead(reply.status, { 'Content-Type': 'application/json' });
      res.end(reply.body);
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(err instanceof Error ? err.message : 'internal error');
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${hostForUrl}:${port}/`,
    esploraUrl: `http://${hostForUrl}:${port}/esplora`,
    port,
    rpcUser,
    rpcPassword,
    chain,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        chain.stopBackground();
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
