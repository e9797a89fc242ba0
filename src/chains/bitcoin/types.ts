/**
 * Types shared by Kassa's Bitcoin node clients (Bitcoin Core JSON-RPC in rpc.ts, Esplora REST in
 * esplora.ts). The watcher depends on `BitcoinNodeClient` only, so it runs unchanged against
 * either backend (and against the devnet, which serves both).
 */
import type { TxidList } from './mempool-txids.ts';
import type { ReplyBuffers } from './reply-buffers.ts';

/** Block header fields Kassa needs, normalised across backends. */
export interface BitcoinBlockHeader {
  /** Block hash, display (big-endian) hex. */
  hash: string;
  height: number;
  /** Parent hash; null for the genesis block. */
  previousBlockHash: string | null;
  /** Header timestamp (unix seconds). */
  time: number;
  /** Median time past, when the backend reports it. */
  medianTime: number | null;
  merkleRoot: string;
  /** Depth in the node's best chain (-1 = not in it), when the backend reports it (Core does, Esplora does not). */
  confirmations: number | null;
}

/** The read/broadcast surface Kassa uses, implemented by both the RPC and the Esplora client. */
export interface BitcoinNodeClient {
  /** What the node is called in logs and error messages (never includes credentials). */
  readonly name: string;
  readonly kind: 'rpc' | 'esplora';
  /** Height of the best chain's tip. */
  getBlockCount(): Promise<number>;
  /** Hash of the best chain's tip. */
  getBestBlockHash(): Promise<string>;
  /** Hash of the best-chain block at `height`. Not found → `BitcoinRpcError` with rpcCode -8 (RPC) / -5 (Esplora 404). */
  getBlockHash(height: number): Promise<string>;
  /** Header of block `hash`. Unknown block → `BitcoinRpcError` with rpcCode -5. */
  getBlockHeader(hash: string): Promise<BitcoinBlockHeader>;
  /** The serialized block (with witness data), to be parsed locally. */
  getBlockRaw(hash: string): Promise<Uint8Array>;
  /** Txids currently in the node's mempool. */
  getRawMempool(): Promise<string[]>;
  /**
   * The same listing as the response's bytes and the offsets of the txids in them (no string per
   * txid; both clients have it), read into the caller's `into` when given: the bytes then stay
   * valid until the second listing kept in it after this one (`ReplyBuffers`).
   */
  getRawMempoolTxids?(into?: ReplyBuffers): Promise<TxidList>;
  /** A serialized transaction (mempool or chain; Core needs -txindex for confirmed ones). Unknown → rpcCode -5. */
  getRawTransactionRaw(txid: string): Promise<Uint8Array>;
  /** Broadcasts a serialized transaction (hex); returns its txid. Rejections keep Core's code (-25/-26/-27). */
  sendRawTransaction(hex: string): Promise<string>;
}

/** Options common to both clients. */
export interface BitcoinClientOptions {
  /** Base URL. May carry `user:password@` for RPC; it is stripped from names and messages. */
  url: string;
  /** Per-attempt timeout in ms (default 10 000). */
  timeoutMs?: number;
  /** Extra attempts after a transport failure/timeout/5xx (default 2; RPC errors are never retried). */
  retries?: number;
  /** First backoff delay in ms, doubled each retry (default 100). */
  retryDelayMs?: number;
  /** Node name used in errors and logs (default: the URL without credentials). */
  name?: string;
  /** Injectable fetch (tests); defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** `getblockchaininfo` result (the fields Kassa reads; Core returns more). */
export interface BlockchainInfo {
  chain: string;
  blocks: number;
  headers: number;
  bestblockhash: string;
  mediantime: number;
  initialblockdownload: boolean;
  verificationprogress: number;
  pruned: boolean;
  [key: string]: unknown;
}

/** `getblockheader <hash> true` result. */
export interface BlockHeaderVerbose {
  hash: string;
  confirmations: number;
  height: number;
  version: number;
  versionHex: string;
  merkleroot: string;
  time: number;
  mediantime: number;
  nonce: number;
  bits: string;
  difficulty: number;
  chainwork: string;
  nTx: number;
  previousblockhash?: string;
  nextblockhash?: string;
}

/** One JSON-RPC call in a batch. */
export interface RpcCall {
  method: string;
  params?: unknown[] | Record<string, unknown>;
}
