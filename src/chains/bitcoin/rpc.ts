/**
 * Bitcoin Core JSON-RPC client (the reference node backend, docs/architecture.md §5). Plain HTTP POST with
 * basic auth, JSON-RPC 1.0 envelopes (understood by every Core version), batching, a per-attempt
 * timeout and exponential-backoff retries on transport failures / timeouts / HTTP 5xx without an
 * RPC error body. RPC errors (the node answered with `{error: {code, message}}`) are never
 * retried: they surface as `BitcoinRpcError` carrying Core's numeric code.
 *
 * Nothing here is devnet-specific: it works unchanged against a real bitcoind.
 */
import { UpstreamError, type KassaErrorOptions } from '../../errors.ts';
import type {
  BitcoinBlockHeader,
  BitcoinClientOptions,
  BitcoinNodeClient,
  BlockHeaderVerbose,
  BlockchainInfo,
  RpcCall,
} from './types.ts';
import { scanTxidArray, txidListFromStrings, type TxidList } from './mempool-txids.ts';
import type { ReplyBuffers } from './reply-buffers.ts';

/** The node answered with a JSON-RPC error (Core's `code`/`message`). Not retried. */
export class BitcoinRpcError extends UpstreamError {
  /** Core's RPC error code, e.g. -5 (not found), -8 (invalid parameter), -25/-26/-27 (tx rejected). */
  readonly rpcCode: number;
  /** The node's own message, e.g. "Block not found". */
  readonly rpcMessage: string;
  readonly method: string;
  readonly node: string;

  constructor(args: { node: string; method: string; rpcCode: number; rpcMessage: string }, opts: KassaErrorOptions = {}) {
    super('bitcoin_rpc_error', `${args.node}: ${args.method} failed with RPC error ${args.rpcCode}: ${args.rpcMessage}`, {
      // -28 = RPC_IN_WARMUP: the node is starting; the caller may try again later.
      retryable: args.rpcCode === -28,
      ...opts,
    });
    this.name = 'BitcoinRpcError';
    this.rpcCode = args.rpcCode;
    this.rpcMessage = args.rpcMessage;
    this.method = args.method;
    this.node = args.node;
  }
}

export function isBitcoinRpcError(err: unknown, rpcCode?: number): err is BitcoinRpcError {
  return err instanceof BitcoinRpcError && (rpcCode === undefined || err.rpcCode === rpcCode);
}

// ---------------------------------------------------------------- shared HTTP plumbing

/** Connection details with credentials separated from what may be shown. */
export interface NodeTarget {
  /** URL to request (credentials removed). */
  url: string;
  /** "Bitcoin node <name> (<url>)" — safe for logs and error messages. */
  display: string;
  name: string;
  auth: string | undefined;
  timeoutMs: number;
  retries: number;
  retryDelayMs: number;
  fetch: typeof fetch;
}

export function nodeTarget(opts: BitcoinClientOptions, creds: { user?: string; password?: string } = {}): NodeTarget {
  let parsed: URL;
  try {
    parsed = new URL(opts.url);
  } catch {
    throw new UpstreamError('bitcoin_node_config', `Invalid Bitcoin node URL${opts.name ? ` for ${opts.name}` : ''}`, { retryable: false, status: 500 });
  }
  const user = creds.user ?? (parsed.username ? decodeURIComponent(parsed.username) : undefined);
  const password = creds.password ?? (parsed.password ? decodeURIComponent(parsed.password) : undefined);
  parsed.username = '';
  parsed.password = '';
  const url = parsed.href;
  const name = opts.name ?? url;
  return {
    url,
    name,
    display: name === url ? `Bitcoin node ${url}` : `Bitcoin node "${name}" (${url})`,
    auth: user !== undefined ? `Basic ${Buffer.from(`${user}:${password ?? ''}`).toString('base64')}` : undefined,
    timeoutMs: opts.timeoutMs ?? 10_000,
    retries: opts.retries ?? 2,
    retryDelayMs: opts.retryDelayMs ?? 100,
    fetch: opts.fetch ?? globalThis.fetch,
  };
}

export interface NodeHttpResponse {
  status: number;
  contentType: string;
  body: Uint8Array;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One HTTP request with timeout and retries. Retries (with backoff `retryDelayMs * 2^n`) on
 * network errors, timeouts, HTTP 429 and 5xx — unless `isFinal(response)` says the response is
 * a real answer (e.g. Core's HTTP 500 carrying a JSON-RPC error). Throws `UpstreamError`
 * naming the node and the method when it gives up.
 */
export async function nodeRequest(
  target: NodeTarget,
  method: string,
  req: { url: string; method: 'GET' | 'POST'; body?: string; headers?: Record<string, string> },
  isFinal: (res: NodeHttpResponse) => boolean = () => false,
  into?: ReplyBuffers,
): Promise<NodeHttpResponse> {
  let lastError: UpstreamError | undefined;
  const attempts = target.retries + 1;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) await sleep(target.retryDelayMs * 2 ** (attempt - 1));
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), target.timeoutMs);
    try {
      const headers: Record<string, string> = { ...req.headers };
      if (target.auth) headers.authorization = target.auth;
      const res = await target.fetch(req.url, { method: req.method, headers, body: req.body, signal: controller.signal });
      const body = into && res.body ? await into.read(res.body) : new Uint8Array(await res.arrayBuffer());
      const out: NodeHttpResponse = { status: res.status, contentType: res.headers.get('content-type') ?? '', body };
      if (res.status === 401 || res.status === 403) {
        throw new UpstreamError('bitcoin_node_unauthorized', `${target.display}: ${method} was refused (HTTP ${res.status}); check the RPC user and password`, {
          retryable: false,
        });
      }
      if ((res.status >= 500 || res.status === 429) && !isFinal(out)) {
        lastError = new UpstreamError('bitcoin_node_http_error', `${target.display}: ${method} failed with HTTP ${res.status}${attemptsNote(attempt + 1)}`);
        continue;
      }
      return out;
    } catch (err) {
      if (err instanceof UpstreamError) throw err;
      if (controller.signal.aborted) {
        lastError = new UpstreamError('bitcoin_node_timeout', `${target.display}: ${method} timed out after ${target.timeoutMs} ms${attemptsNote(attempt + 1)}`, {
          cause: err,
        });
      } else {
        const reason = err instanceof Error ? ((err.cause as { code?: string } | undefined)?.code ?? err.message) : String(err);
        lastError = new UpstreamError('bitcoin_node_unreachable', `${target.display}: ${method} failed: ${reason}${attemptsNote(attempt + 1)}`, { cause: err });
      }
    } finally {
      clearTimeout(timer);
    }
  }
  throw lastError!;
}

function attemptsNote(n: number): string {
  return n > 1 ? ` (after ${n} attempts)` : '';
}

export function hexToBytes(hex: string, what: string, display: string): Uint8Array {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new UpstreamError('bitcoin_node_bad_response', `${display}: ${what} returned invalid hex`);
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

// ---------------------------------------------------------------- RPC client

export interface BitcoinRpcClientOptions extends BitcoinClientOptions {
  /** RPC user (`rpcuser`, or `__cookie__` with the cookie file's password). */
  user?: string;
  password?: string;
}

export type RpcBatchResult<T = unknown> = { ok: true; result: T } | { ok: false; error: BitcoinRpcError };

export interface BitcoinRpcClient extends BitcoinNodeClient {
  readonly kind: 'rpc';
  /** Any RPC method; resolves with `result`, rejects with `BitcoinRpcError` / `UpstreamError`. */
  call<T = unknown>(method: string, params?: unknown[] | Record<string, unknown>): Promise<T>;
  /** Several calls in one HTTP request (JSON-RPC batch); results in the order given. */
  batch(calls: RpcCall[]): Promise<RpcBatchResult[]>;
  /** `getblockchaininfo`. */
  getBlockchainInfo(): Promise<BlockchainInfo>;
  /** `getblockheader <hash> true`: Core's full verbose header. */
  getBlockHeaderVerbose(hash: string): Promise<BlockHeaderVerbose>;
  /** `getblockheader <hash> false`: the 80-byte header. */
  getBlockHeaderRaw(hash: string): Promise<Uint8Array>;
  /** `getrawtransaction <txid> false [blockhash]`. */
  getRawTransactionRaw(txid: string, blockHash?: string): Promise<Uint8Array>;
  /** `sendrawtransaction <hex> [maxfeerate]`. */
  sendRawTransaction(hex: string, maxFeeRate?: number): Promise<string>;
  /**
   * `getrawmempool false` as the reply's bytes and the offsets of the txids in them; read into the
   * caller's `into` when given (see `ReplyBuffers` for how long the bytes stay valid).
   */
  getRawMempoolTxids(into?: ReplyBuffers): Promise<TxidList>;
}

interface RpcReply {
  result?: unknown;
  error?: { code: number; message: string } | null;
  id?: unknown;
}

function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    return undefined;
  }
}

function isRpcReply(v: unknown): v is RpcReply {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && ('result' in v || 'error' in v);
}

/** Position of the first byte at or after `p` that is not JSON whitespace. */
function skipWs(b: Uint8Array, p: number): number {
  while (b[p] === 0x20 || b[p] === 0x0a || b[p] === 0x0d || b[p] === 0x09) p++;
  return p;
}

/** Position after the JSON value starting at `b[p]` (not validated: the caller parses what it keeps), or -1. */
function skipJsonValue(b: Uint8Array, p: number): number {
  const n = b.length;
  let depth = 0;
  while (p < n) {
    const c = b[p]!;
    if (c === 0x22) {
      for (p++; p < n && b[p] !== 0x22; p++) if (b[p] === 0x5c) p++;
      if (p >= n) return -1;
      p++;
      if (depth === 0) return p;
    } else if (c === 0x5b || c === 0x7b) {
      depth++;
      p++;
    } else if (c === 0x5d || c === 0x7d) {
      if (depth === 0) return p; // the end of a number or literal
      p++;
      if (--depth === 0) return p;
    } else if (depth === 0 && (c === 0x2c || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09)) return p;
    else p++;
  }
  return depth === 0 ? p : -1;
}

/**
 * A JSON-RPC reply whose `result` is an array of txids (`getrawmempool false`), read without a
 * string per txid: the array through `scanTxidArray`, the rest of the envelope by `JSON.parse` with
 * the array replaced by `0`. Returns the reply with `result` the `TxidList`, or null when the reply
 * is not of that shape (an error reply, a result that is not such an array): the caller parses it in full.
 */
function txidArrayReply(b: Uint8Array): (RpcReply & { result: TxidList }) | null {
  let p = skipWs(b, 0);
  if (b[p] !== 0x7b) return null;
  p++;
  for (;;) {
    p = skipWs(b, p);
    if (b[p] !== 0x22) return null;
    const keyStart = p + 1;
    p = keyStart;
    while (p < b.length && b[p] !== 0x22 && b[p] !== 0x5c) p++;
    if (b[p] !== 0x22) return null;
    const isResult = p - keyStart === 6 && Buffer.from(b.buffer, b.byteOffset + keyStart, 6).toString('latin1') === 'result';
    p = skipWs(b, p + 1);
    if (b[p] !== 0x3a) return null;
    p = skipWs(b, p + 1);
    if (isResult) {
      const scan = scanTxidArray(b, p);
      if (!scan) return null;
      const rest = parseJson(Buffer.concat([b.subarray(0, p), Buffer.from('0'), b.subarray(scan.end)]));
      if (!isRpcReply(rest) || rest.result !== 0) return null;
      return { ...rest, result: scan.list };
    }
    p = skipJsonValue(b, p);
    if (p < 0) return null;
    p = skipWs(b, p);
    if (b[p] !== 0x2c) return null;
    p++;
  }
}

export function normaliseHeader(h: BlockHeaderVerbose): BitcoinBlockHeader {
  return {
    hash: h.hash,
    height: h.height,
    previousBlockHash: h.previousblockhash ?? null,
    time: h.time,
    medianTime: h.mediantime ?? null,
    merkleRoot: h.merkleroot,
    confirmations: h.confirmations ?? null,
  };
}

/**
 * Creates a Bitcoin Core JSON-RPC client. Credentials come from `user`/`password` or the URL's
 * userinfo; they never appear in `name`, logs or error messages.
 */
export function createBitcoinRpcClient(opts: BitcoinRpcClientOptions): BitcoinRpcClient {
  const creds: { user?: string; password?: string } = {};
  if (opts.user !== undefined) creds.user = opts.user;
  if (opts.password !== undefined) creds.password = opts.password;
  const target = nodeTarget(opts, creds);
  let nextId = 1;

  const rpcError = (method: string, e: { code: number; message: string }): BitcoinRpcError =>
    new BitcoinRpcError({ node: target.display, method, rpcCode: e.code, rpcMessage: e.message });

  function post(method: string, params: unknown[] | Record<string, unknown>, into?: ReplyBuffers): Promise<NodeHttpResponse> {
    const id = nextId++;
    return nodeRequest(
      target,
      method,
      { url: target.url, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '1.0', id, method, params }) },
      (r) => isRpcReply(parseJson(r.body)), // Core answers RPC errors with HTTP 500/404 + a JSON body: final
      into,
    );
  }

  function resultOf<T>(method: string, res: NodeHttpResponse, reply: unknown = parseJson(res.body)): T {
    if (!isRpcReply(reply)) {
      throw new UpstreamError('bitcoin_node_bad_response', `${target.display}: ${method} returned HTTP ${res.status} without a JSON-RPC reply`);
    }
    if (reply.error) throw rpcError(method, reply.error);
    return reply.result as T;
  }

  async function call<T>(method: string, params: unknown[] | Record<string, unknown> = []): Promise<T> {
    return resultOf<T>(method, await post(method, params));
  }

  /** `getrawmempool false`, read from the reply's bytes (one string per txid would cost more than the rest of a pass). */
  async function getRawMempoolTxids(into?: ReplyBuffers): Promise<TxidList> {
    const res = await post('getrawmempool', [false], into);
    const fast = txidArrayReply(res.body);
    if (fast) return resultOf<TxidList>('getrawmempool', res, fast);
    // Not the usual shape (an error reply, whitespace inside strings, …): parse it all.
    const txids = resultOf<unknown>('getrawmempool', res);
    const list = Array.isArray(txids) ? txidListFromStrings(txids) : null;
    if (!list) throw new UpstreamError('bitcoin_node_bad_response', `${target.display}: getrawmempool did not return a list of txids`);
    return list;
  }

  async function batch(calls: RpcCall[]): Promise<RpcBatchResult[]> {
    if (calls.length === 0) return [];
    const first = nextId;
    nextId += calls.length;
    const label = `batch(${calls.map((c) => c.method).join(',')})`.slice(0, 120);
    const body = JSON.stringify(calls.map((c, i) => ({ jsonrpc: '1.0', id: first + i, method: c.method, params: c.params ?? [] })));
    const res = await nodeRequest(target, label, { url: target.url, method: 'POST', headers: { 'content-type': 'application/json' }, body }, (r) =>
      Array.isArray(parseJson(r.body)),
    );
    const replies = parseJson(res.body);
    if (!Array.isArray(replies)) {
      const single = isRpcReply(replies) && replies.error ? `: ${replies.error.message}` : '';
      throw new UpstreamError('bitcoin_node_bad_response', `${target.display}: ${label} returned HTTP ${res.status} without a batch reply${single}`);
    }
    const byId = new Map<unknown, RpcReply>();
    for (const r of replies) if (isRpcReply(r)) byId.set(r.id, r);
    return calls.map((c, i) => {
      const r = byId.get(first + i);
      if (!r) {
        return { ok: false, error: rpcError(c.method, { code: -32603, message: 'no reply for this call in the batch response' }) };
      }
      return r.error ? { ok: false, error: rpcError(c.method, r.error) } : { ok: true, result: r.result };
    });
  }

  return {
    kind: 'rpc',
    name: target.name,
    call,
    batch,
    /** `getblockchaininfo` */
    getBlockchainInfo: () => call<BlockchainInfo>('getblockchaininfo'),
    /** `getblockcount` */
    getBlockCount: () => call<number>('getblockcount'),
    /** `getbestblockhash` */
    getBestBlockHash: () => call<string>('getbestblockhash'),
    /** `getblockhash <height>` */
    getBlockHash: (height: number) => call<string>('getblockhash', [height]),
    /** `getblockheader <hash> true` */
    getBlockHeaderVerbose: (hash: string) => call<BlockHeaderVerbose>('getblockheader', [hash, true]),
    /** `getblockheader <hash> true`, normalised */
    getBlockHeader: async (hash: string) => normaliseHeader(await call<BlockHeaderVerbose>('getblockheader', [hash, true])),
    /** `getblockheader <hash> false` */
    getBlockHeaderRaw: async (hash: string) => hexToBytes(await call<string>('getblockheader', [hash, false]), 'getblockheader', target.display),
    /** `getblock <hash> 0` */
    getBlockRaw: async (hash: string) => hexToBytes(await call<string>('getblock', [hash, 0]), 'getblock', target.display),
    /** `getrawmempool false` */
    getRawMempool: () => call<string[]>('getrawmempool', [false]),
    getRawMempoolTxids,
    /** `getrawtransaction <txid> false [blockhash]` */
    getRawTransactionRaw: async (txid: string, blockHash?: string) =>
      hexToBytes(
        await call<string>('getrawtransaction', blockHash === undefined ? [txid, false] : [txid, false, blockHash]),
        'getrawtransaction',
        target.display,
      ),
    /** `sendrawtransaction <hex> [maxfeerate]` */
    sendRawTransaction: (hex: string, maxFeeRate?: number) => call<string>('sendrawtransaction', maxFeeRate === undefined ? [hex] : [hex, maxFeeRate]),
  };
}
