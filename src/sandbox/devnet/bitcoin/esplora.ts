/**
 * The Esplora REST routes Kassa uses, served from the devnet chain state (mounted under
 * `/esplora`). Shapes and status codes follow Blockstream's electrs/esplora.
 */
import * as bitcoin from 'bitcoinjs-lib';
import { DevnetChain, REGTEST_DIFFICULTY, type BlockEntry } from './chain.ts';
import { RpcError, fromHex, hashToHex, isHex, toHex } from './util.ts';

export interface EsploraResponse {
  status: number;
  contentType: string;
  body: string | Uint8Array;
}

const text = (body: string, status = 200): EsploraResponse => ({ status, contentType: 'text/plain', body });
const json = (value: unknown, status = 200): EsploraResponse => ({ status, contentType: 'application/json', body: JSON.stringify(value) });
const binary = (body: Uint8Array): EsploraResponse => ({ status: 200, contentType: 'application/octet-stream', body });

function blockJson(chain: DevnetChain, e: BlockEntry): Record<string, unknown> {
  return {
    id: e.hash,
    height: e.height,
    version: e.block.version,
    timestamp: e.time,
    tx_count: e.txs.length,
    size: e.size,
    weight: e.weight,
    merkle_root: hashToHex(e.block.merkleRoot!),
    previousblockhash: e.prevHash,
    mediantime: e.medianTime,
    nonce: e.block.nonce,
    bits: e.block.bits,
    difficulty: REGTEST_DIFFICULTY,
  };
}

function txStatus(chain: DevnetChain, txid: string): Record<string, unknown> {
  const found = chain.findTx(txid);
  if (!found?.block) return { confirmed: false };
  return { confirmed: true, block_height: found.block.height, block_hash: found.block.hash, block_time: found.block.time };
}

const HASH = /^[0-9a-fA-F]{64}$/;

/** Handles one Esplora request; `path` is relative to the Esplora base (e.g. `/blocks/tip/height`). */
export function handleEsplora(chain: DevnetChain, method: string, path: string, body: string): EsploraResponse {
  const parts = path.split('/').filter(Boolean);
  if (method === 'POST' && parts.length === 1 && parts[0] === 'tx') {
    const hex = body.trim();
    let tx: bitcoin.Transaction;
    try {
      if (!isHex(hex)) throw new Error('bad hex');
      tx = bitcoin.Transaction.fromBuffer(fromHex(hex));
    } catch {
      return text('sendrawtransaction RPC error: {"code":-22,"message":"TX decode failed"}', 400);
    }
    try {
      return text(chain.acceptToMempool(tx));
    } catch (err) {
      if (err instanceof RpcError) return text(`sendrawtransaction RPC error: ${JSON.stringify({ code: err.code, message: err.message })}`, 400);
      throw err;
    }
  }
  if (method !== 'GET') return text('Method not allowed', 405);
  const [a, b, c] = parts;
  if (a === 'blocks' && b === 'tip' && c === 'height' && parts.length === 3) return text(String(chain.height()));
  if (a === 'blocks' && b === 'tip' && c === 'hash' && parts.length === 3) return text(chain.tip().hash);
  if (a === 'block-height' && b !== undefined && parts.length === 2) {
    if (!/^\d+$/.test(b)) return text('Invalid height', 400);
    const e = chain.active[Number(b)];
    return e ? text(e.hash) : text('Block not found', 404);
  }
  if (a === 'block' && b !== undefined && parts.length <= 3) {
    if (!HASH.test(b)) return text('Invalid hex string', 400);
    const e = chain.blocks.get(b.toLowerCase());
    if (!e) return text('Block not found', 404);
    if (c === undefined) return json(blockJson(chain, e));
    if (c === 'raw') return binary(e.raw);
    if (c === 'header') return text(toHex(e.header));
    if (c === 'txids') return json(e.txids);
    if (c === 'status') {
      const next = chain.nextInActive(e);
      return json(chain.isActive(e) ? { in_best_chain: true, height: e.height, next_best: next?.hash ?? null } : { in_best_chain: false });
    }
  }
  if (a === 'tx' && b !== undefined && parts.length === 3) {
    if (!HASH.test(b)) return text('Invalid hex string', 400);
    const txid = b.toLowerCase();
    if (c === 'status') return json(txStatus(chain, txid));
    const bg = chain.background.get(txid);
    if (bg && c === 'hex') return text(toHex(bg));
    if (bg && c === 'raw') return binary(bg);
    const found = chain.findTx(txid);
    if (!found) return text('Transaction not found', 404);
    if (c === 'hex') return text(toHex(found.tx.toBuffer()));
    if (c === 'raw') return binary(found.tx.toBuffer());
  }
  if (a === 'mempool' && b === 'txids' && parts.length === 2) return json([...chain.mempool.keys(), ...chain.background.keys()]);
  if (a === 'mempool' && parts.length === 1) {
    const entries = [...chain.mempool.values()];
    return json({
      count: entries.length,
      vsize: entries.reduce((s, m) => s + m.vsize, 0),
      total_fee: Number(entries.reduce((s, m) => s + m.fee, 0n)),
      fee_histogram: [],
    });
  }
  return text('Not found', 404);
}
