/**
 * Esplora REST client (the second Bitcoin backend, docs/architecture.md §5), implementing the same
 * `BitcoinNodeClient` surface as the Core RPC client. HTTP "not found" answers become
 * `BitcoinRpcError`s with Core's codes (-5 unknown block/tx, -8 height out of range), and
 * broadcast rejections keep the code Esplora relays from its bitcoind (-25/-26/-27), so callers
 * handle both backends the same way. Timeouts/retries as in rpc.ts.
 */
import { UpstreamError } from '../../errors.ts';
import { BitcoinRpcError, hexToBytes, nodeRequest, nodeTarget, type NodeHttpResponse, type NodeTarget } from './rpc.ts';
import type { BitcoinBlockHeader, BitcoinClientOptions, BitcoinNodeClient } from './types.ts';
import { scanTxidArray, txidListFromStrings, type TxidList } from './mempool-txids.ts';
import type { ReplyBuffers } from './reply-buffers.ts';

export interface EsploraTxStatus {
  confirmed: boolean;
  block_height?: number;
  block_hash?: string;
  block_time?: number;
}

export interface EsploraClient extends BitcoinNodeClient {
  readonly kind: 'esplora';
  /** `GET /block/:hash/header`: the 80-byte header. */
  getBlockHeaderRaw(hash: string): Promise<Uint8Array>;
  /** `GET /tx/:txid/status`. */
  getTxStatus(txid: string): Promise<EsploraTxStatus>;
  /** `GET /mempool/txids` as the response's bytes and the offsets of the txids in them. */
  getRawMempoolTxids(): Promise<TxidList>;
}

const HASH = /^[0-9a-fA-F]{64}$/;

export function createEsploraClient(opts: BitcoinClientOptions): EsploraClient {
  const base = opts.url.replace(/\/+$/, '');
  const target: NodeTarget = nodeTarget({ ...opts, url: base });
  const root = target.url.replace(/\/+$/, '');
  const text = (r: NodeHttpResponse): string => Buffer.from(r.body).toString('utf8');

  function checkHash(method: string, value: string, what: string): void {
    if (!HASH.test(value)) {
      throw new BitcoinRpcError({ node: target.display, method, rpcCode: -8, rpcMessage: `${what} must be a 64-character hex string` });
    }
  }

  async function get(method: string, path: string, notFound?: { code: number; message: string }, into?: ReplyBuffers): Promise<NodeHttpResponse> {
    const res = await nodeRequest(target, method, { url: `${root}${path}`, method: 'GET' }, undefined, into);
    if (res.status === 404 && notFound) {
      throw new BitcoinRpcError({ node: target.display, method, rpcCode: notFound.code, rpcMessage: notFound.message });
    }
    if (res.status !== 200) {
      throw new UpstreamError('bitcoin_node_http_error', `${target.display}: ${method} failed with HTTP ${res.status}: ${text(res).slice(0, 200)}`, {
        retryable: false,
      });
    }
    return res;
  }

  const getText = async (method: string, path: string, nf?: { code: number; message: string }): Promise<string> => text(await get(method, path, nf)).trim();

  async function getJson<T>(method: string, path: string, nf?: { code: number; message: string }): Promise<T> {
    const body = await getText(method, path, nf);
    try {
      return JSON.parse(body) as T;
    } catch {
      throw new UpstreamError('bitcoin_node_bad_response', `${target.display}: ${method} returned invalid JSON`);
    }
  }

  const blockNotFound = { code: -5, message: 'Block not found' };
  const txNotFound = { code: -5, message: 'No such mempool or blockchain transaction' };

  return {
    kind: 'esplora',
    name: target.name,
    /** `GET /blocks/tip/height` */
    async getBlockCount() {
      const t = await getText('GET /blocks/tip/height', '/blocks/tip/height');
      if (!/^\d+$/.test(t)) throw new UpstreamError('bitcoin_node_bad_response', `${target.display}: GET /blocks/tip/height returned '${t.slice(0, 40)}'`);
      return Number(t);
    },
    /** `GET /blocks/tip/hash` */
    getBestBlockHash: () => getText('GET /blocks/tip/hash', '/blocks/tip/hash'),
    /** `GET /block-height/:height` */
    getBlockHash: (height: number) => getText('GET /block-height/:height', `/block-height/${height}`, { code: -8, message: 'Block height out of range' }),
    /** `GET /block/:hash` */
    async getBlockHeader(hash: string): Promise<BitcoinBlockHeader> {
      checkHash('GET /block/:hash', hash, 'blockhash');
      const b = await getJson<{ id: string; height: number; previousblockhash: string | null; timestamp: number; mediantime?: number; merkle_root: string }>(
        'GET /block/:hash',
        `/block/${hash}`,
        blockNotFound,
      );
      return {
        hash: b.id,
        height: b.height,
        previousBlockHash: b.previousblockhash ?? null,
        time: b.timestamp,
        medianTime: b.mediantime ?? null,
        merkleRoot: b.merkle_root,
        confirmations: null,
      };
    },
    /** `GET /block/:hash/header` */
    async getBlockHeaderRaw(hash: string) {
      checkHash('GET /block/:hash/header', hash, 'blockhash');
      return hexToBytes(await getText('GET /block/:hash/header', `/block/${hash}/header`, blockNotFound), 'GET /block/:hash/header', target.display);
    },
    /** `GET /block/:hash/raw` */
    async getBlockRaw(hash: string) {
      checkHash('GET /block/:hash/raw', hash, 'blockhash');
      return (await get('GET /block/:hash/raw', `/block/${hash}/raw`, blockNotFound)).body;
    },
    /** `GET /mempool/txids` */
    getRawMempool: () => getJson<string[]>('GET /mempool/txids', '/mempool/txids'),
    /** `GET /mempool/txids`, read from the response's bytes (no string per txid). */
    async getRawMempoolTxids(into?: ReplyBuffers) {
      const res = await get('GET /mempool/txids', '/mempool/txids', undefined, into);
      const scan = scanTxidArray(res.body, 0);
      let p = scan ? scan.end : 0;
      while (p < res.body.length && (res.body[p] === 0x20 || res.body[p] === 0x0a || res.body[p] === 0x0d || res.body[p] === 0x09)) p++;
      if (scan && p === res.body.length) return scan.list;
      let txids: unknown = null;
      try {
        txids = JSON.parse(text(res));
      } catch { /* reported below */ }
      const list = Array.isArray(txids) ? txidListFromStrings(txids) : null;
      if (!list) throw new UpstreamError('bitcoin_node_bad_response', `${target.display}: GET /mempool/txids did not return a list of txids`);
      return list;
    },
    /** `GET /tx/:txid/hex` */
    async getRawTransactionRaw(txid: string) {
      checkHash('GET /tx/:txid/hex', txid, 'txid');
      return hexToBytes(await getText('GET /tx/:txid/hex', `/tx/${txid}/hex`, txNotFound), 'GET /tx/:txid/hex', target.display);
    },
    /** `GET /tx/:txid/status` */
    async getTxStatus(txid: string) {
      checkHash('GET /tx/:txid/status', txid, 'txid');
      return getJson<EsploraTxStatus>('GET /tx/:txid/status', `/tx/${txid}/status`, txNotFound);
    },
    /** `POST /tx` (body: raw tx hex) */
    async sendRawTransaction(hex: string) {
      const method = 'POST /tx';
      const res = await nodeRequest(target, method, { url: `${root}/tx`, method: 'POST', body: hex, headers: { 'content-type': 'text/plain' } });
      const body = text(res).trim();
      if (res.status === 200) return body;
      // Esplora relays bitcoind's error: "sendrawtransaction RPC error: {"code":-26,"message":"..."}"
      const m = /\{.*\}/s.exec(body);
      if (m) {
        try {
          const e = JSON.parse(m[0]) as { code?: unknown; message?: unknown };
          if (typeof e.code === 'number' && typeof e.message === 'string') {
            throw new BitcoinRpcError({ node: target.display, method, rpcCode: e.code, rpcMessage: e.message });
          }
        } catch (err) {
          if (err instanceof BitcoinRpcError) throw err;
        }
      }
      if (res.status === 400) throw new BitcoinRpcError({ node: target.display, method, rpcCode: -26, rpcMessage: body.slice(0, 300) });
      throw new UpstreamError('bitcoin_node_http_error', `${target.display}: ${method} failed with HTTP ${res.status}: ${body.slice(0, 200)}`, { retryable: false });
    },
  };
}
