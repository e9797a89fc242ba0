/**
 * In-memory Bitcoin regtest chain state for the devnet: a block tree with an active chain, the
 * UTXO set (with undo data for disconnecting blocks), a transaction index, a mempool with
 * opt-in RBF, a miner and an HD wallet. Blocks and transactions are real serializations built
 * with bitcoinjs-lib; the genesis block is Bitcoin Core's regtest genesis block.
 *
 * State lives only in memory: everything is lost when the process stops.
 */
import { createHash, randomFillSync } from 'node:crypto';
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from '@bitcoinerlab/secp256k1';
import { DevnetWallet, REGTEST, type WalletKey } from './wallet.ts';
import { RPC, RpcError, bytesEqual, formatBtc, fromHex, hashToHex, hexToHash, toHex, COIN, MAX_MONEY } from './util.ts';

const { Transaction, Block } = bitcoin;
type Tx = bitcoin.Transaction;
type Blk = bitcoin.Block;

export const COINBASE_MATURITY = 100;
export const SUBSIDY_HALVING_INTERVAL = 150; // regtest
export const REGTEST_BITS = 0x207fffff;
export const BLOCK_VERSION = 0x20000000;
/** Regtest difficulty as Core reports it for bits 0x207fffff. */
export const REGTEST_DIFFICULTY = 4.656542373906925e-10;
const SEQUENCE_FINAL = 0xffffffff;
const MAX_BIP125_RBF_SEQUENCE = 0xfffffffd;

export interface Coin {
  txid: string;
  vout: number;
  value: bigint;
  script: Uint8Array;
  /** Height of the block that created it; for mempool outputs, -1. */
  height: number;
  coinbase: boolean;
}

export interface BlockEntry {
  hash: string;
  height: number;
  prevHash: string | null;
  block: Blk;
  raw: Uint8Array;
  header: Uint8Array;
  txs: Tx[];
  txids: string[];
  time: number;
  medianTime: number;
  /** Order in which the devnet learned about the block (first seen wins ties, like Core). */
  seq: number;
  invalid: boolean;
  size: number;
  strippedSize: number;
  weight: number;
}

export interface MempoolEntry {
  tx: Tx;
  txid: string;
  wtxid: string;
  fee: bigint;
  vsize: number;
  weight: number;
  time: number;
  height: number;
  /** BIP125: some input has nSequence <= 0xfffffffd. */
  rbf: boolean;
}

export interface DevnetChainOptions {
  /** BIP32 seed (hex) of the devnet wallet; a fixed default is used when absent. */
  seed?: string;
  /** Replace mempool transactions even when they do not signal BIP125 (Core 28 default). Default false. */
  fullRbf?: boolean;
  /** Clock in unix seconds; injectable for tests. */
  now?: () => number;
}

export interface SendOptions {
  /** Fee rate in sat/vB; default 20 (Core's regtest fallback fee 0.0002 BTC/kvB). */
  feeRate?: number;
  /** Subtract the fee from this output index instead of adding change-side. */
  subtractFeeFrom?: number[];
  /** Signal BIP125 replaceability (Core's wallet default: true). */
  replaceable?: boolean;
}

const outpointKey = (txid: string, vout: number): string => `${txid}:${vout}`;

function subsidy(height: number): bigint {
  const halvings = Math.floor(height / SUBSIDY_HALVING_INTERVAL);
  if (halvings >= 64) return 0n;
  return (50n * COIN) >> BigInt(halvings);
}

/** BIP34 height push as Core writes it (`CScript() << nHeight << OP_0`). */
function coinbaseScriptSig(height: number): Uint8Array {
  // compile() writes 1..16 as OP_1..OP_16 (minimal push), exactly like Core's CScript << int.
  return bitcoin.script.compile([bitcoin.script.number.encode(height), bitcoin.opcodes.OP_0!]);
}

function isUnspendable(script: Uint8Array): boolean {
  return script.length > 0 && script[0] === bitcoin.opcodes.OP_RETURN;
}

function signalsRbf(tx: Tx): boolean {
  return tx.ins.some((i) => i.sequence <= MAX_BIP125_RBF_SEQUENCE);
}

/** Bitcoin Core's regtest genesis block, rebuilt byte for byte. */
function regtestGenesis(): Blk {
  const cb = new Transaction();
  cb.version = 1;
  cb.addInput(
    new Uint8Array(32),
    0xffffffff,
    SEQUENCE_FINAL,
    fromHex(
      '04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73',
    ),
  );
  cb.addOutput(
    fromHex(
      '4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac',
    ),
    50n * COIN,
  );
  const block = new Block();
  block.version = 1;
  block.prevHash = new Uint8Array(32);
  block.transactions = [cb];
  block.merkleRoot = Block.calculateMerkleRoot([cb]);
  block.timestamp = 1296688602;
  block.bits = REGTEST_BITS;
  block.nonce = 2;
  return block;
}

export const REGTEST_GENESIS_HASH = '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206';

export class DevnetChain {
  readonly blocks = new Map<string, BlockEntry>();
  readonly active: BlockEntry[] = [];
  readonly utxo = new Map<string, Coin>();
  /** Block hash → undo data: for each transaction of the block (by index), the coins its inputs spent. */
  private readonly undo = new Map<string, Coin[][]>();
  /** txid → hash of the active-chain block containing it. */
  readonly txIndex = new Map<string, string>();
  readonly mempool = new Map<string, MempoolEntry>();
  /** outpoint → txid of the mempool transaction spending it. */
  private readonly mempoolSpends = new Map<string, string>();
  readonly wallet: DevnetWallet;
  private seq = 0;
  private readonly clock: () => number;
  /** Core's `setmocktime` (regtest): when non-zero, the node's clock (block timestamps, mempool times). */
  private mocktime = 0;
  /**
   * Devnet-only: seconds added to the clock when stamping new blocks (`devnet_setblocktimeoffset`),
   * so tests get blocks whose timestamps are hours early or late, as a miner's clock can be.
   * While it is non-zero the increasing-timestamp rule is not applied (Core would refuse a block
   * earlier than its median time past; Kassa must never trust block times anyway).
   */
  blockTimeOffset = 0;
  private readonly fullRbf: boolean;
  readonly startedAt: number;
  /**
   * Devnet-only background mempool (`devnet_backgroundmempool`, benchmarks): txid → raw bytes of
   * synthetic transactions that fill the mempool to mainnet size. They are listed by
   * `getrawmempool` (not verbose) and Esplora's `/mempool/txids`, served by `getrawtransaction` and
   * `/tx/:txid/hex|raw`, never validated and never mined (a fee below what the miner takes); each
   * mined block drops the oldest beyond the target, as a block empties part of a real mempool.
   */
  readonly background = new Map<string, Uint8Array>();
  private backgroundTarget = 0;
  private backgroundTimer: NodeJS.Timeout | null = null;

  constructor(opts: DevnetChainOptions = {}) {
    this.wallet = new DevnetWallet(opts.seed);
    this.clock = opts.now ?? (() => Math.floor(Date.now() / 1000));
    this.fullRbf = opts.fullRbf ?? false;
    this.startedAt = this.now();
    const genesis = this.addBlock(regtestGenesis());
    if (genesis.hash !== REGTEST_GENESIS_HASH) throw new Error(`devnet genesis mismatch: ${genesis.hash}`);
    this.active.push(genesis); // genesis coinbase is unspendable, like Core: no UTXO, no tx index
  }

  // ---------------------------------------------------------------- queries

  tip(): BlockEntry {
    return this.active[this.active.length - 1]!;
  }

  height(): number {
    return this.active.length - 1;
  }

  isActive(entry: BlockEntry): boolean {
    return this.active[entry.height] === entry;
  }

  /** Core's `confirmations`: depth in the active chain, -1 for blocks off it. */
  confirmations(entry: BlockEntry): number {
    return this.isActive(entry) ? this.height() - entry.height + 1 : -1;
  }

  nextInActive(entry: BlockEntry): BlockEntry | undefined {
    return this.isActive(entry) ? this.active[entry.height + 1] : undefined;
  }

  /** Chainwork as Core's 64-hex-digit string (2 per regtest block). */
  chainwork(entry: BlockEntry): string {
    return (BigInt(entry.height + 1) * 2n).toString(16).padStart(64, '0');
  }

  /** A transaction and where it is: mempool, an active-chain block, or unknown. */
  findTx(txid: string): { tx: Tx; block?: BlockEntry; mempool?: MempoolEntry } | undefined {
    const m = this.mempool.get(txid);
    if (m) return { tx: m.tx, mempool: m };
    const bh = this.txIndex.get(txid);
    if (!bh) return undefined;
    const block = this.blocks.get(bh)!;
    const i = block.txids.indexOf(txid);
    return { tx: block.txs[i]!, block };
  }

  /** An unspent output, in the chain's UTXO set or created by a mempool transaction. */
  findCoin(txid: string, vout: number): Coin | undefined {
    const c = this.utxo.get(outpointKey(txid, vout));
    if (c) return c;
    const m = this.mempool.get(txid);
    const out = m?.tx.outs[vout];
    if (!m || !out || isUnspendable(out.script)) return undefined;
    return { txid, vout, value: out.value, script: out.script, height: -1, coinbase: false };
  }

  mempoolSpender(txid: string, vout: number): string | undefined {
    return this.mempoolSpends.get(outpointKey(txid, vout));
  }

  // ---------------------------------------------------------------- blocks

  private addBlock(block: Blk): BlockEntry {
    const hash = block.getId();
    const prevHash = block.prevHash && block.prevHash.some((b) => b !== 0) ? hashToHex(block.prevHash) : null;
    const parent = prevHash ? this.blocks.get(prevHash) : undefined;
    const height = parent ? parent.height + 1 : 0;
    const txs = block.transactions ?? [];
    const times: number[] = [block.timestamp];
    for (let p = parent, i = 0; p && i < 10; p = p.prevHash ? this.blocks.get(p.prevHash) : undefined, i++) times.push(p.time);
    times.sort((a, b) => a - b);
    const raw = block.toBuffer();
    const stripped = block.byteLength(false, false);
    const entry: BlockEntry = {
      hash,
      height,
      prevHash,
      block,
      raw,
      header: block.toBuffer(true),
      txs,
      txids: txs.map((t) => t.getId()),
      time: block.timestamp,
      medianTime: times[Math.floor(times.length / 2)]!,
      seq: this.seq++,
      invalid: false,
      size: raw.length,
      strippedSize: stripped,
      weight: stripped * 3 + raw.length,
    };
    this.blocks.set(hash, entry);
    return entry;
  }

  private connect(entry: BlockEntry): void {
    const undo: Coin[][] = [];
    entry.txs.forEach((tx, ti) => {
      const txid = entry.txids[ti]!;
      const spent: Coin[] = [];
      undo.push(spent);
      if (ti > 0) {
        for (const input of tx.ins) {
          const key = outpointKey(hashToHex(input.hash), input.index);
          const coin = this.utxo.get(key);
          if (!coin) throw new Error(`devnet: block ${entry.hash} spends missing coin ${key}`);
          spent.push(coin);
          this.utxo.delete(key);
        }
      }
      tx.outs.forEach((out, vout) => {
        if (isUnspendable(out.script)) return;
        this.utxo.set(outpointKey(txid, vout), { txid, vout, value: out.value, script: out.script, height: entry.height, coinbase: ti === 0 });
      });
      this.txIndex.set(txid, entry.hash);
    });
    this.undo.set(entry.hash, undo);
    this.active.push(entry);
  }

  /**
   * Undoes the tip block like Core's DisconnectBlock: transactions in reverse order, each one's
   * outputs removed and the coins it spent restored. Only coins created in earlier blocks come
   * back; an output both created and spent inside this block is gone with its creating tx.
   */
  private disconnectTip(): BlockEntry {
    const entry = this.active.pop()!;
    const undo = this.undo.get(entry.hash) ?? [];
    const createdHere = new Set(entry.txids);
    for (let ti = entry.txs.length - 1; ti >= 0; ti--) {
      const txid = entry.txids[ti]!;
      entry.txs[ti]!.outs.forEach((_o, vout) => this.utxo.delete(outpointKey(txid, vout)));
      this.txIndex.delete(txid);
      for (const coin of undo[ti] ?? []) {
        if (!createdHere.has(coin.txid)) this.utxo.set(outpointKey(coin.txid, coin.vout), coin);
      }
    }
    this.undo.delete(entry.hash);
    return entry;
  }

  private badAncestry(entry: BlockEntry): boolean {
    for (let e: BlockEntry | undefined = entry; e; e = e.prevHash ? this.blocks.get(e.prevHash) : undefined) {
      if (e.invalid) return true;
    }
    return false;
  }

  /**
   * Switches to the valid tip with the most work (= height on regtest; first seen wins ties),
   * disconnecting and connecting blocks as needed; transactions from disconnected blocks go back
   * to the mempool when still valid, like Core.
   */
  private activateBestChain(): void {
    let best = this.tip();
    if (this.badAncestry(best)) best = this.active[0]!;
    for (const e of this.blocks.values()) {
      if (this.badAncestry(e)) continue;
      if (e.height > best.height || (e.height === best.height && e.seq < best.seq && !this.isActive(best))) best = e;
    }
    // Find the fork point with the new best branch.
    const branch: BlockEntry[] = [];
    let e: BlockEntry | undefined = best;
    while (e && !this.isActive(e)) {
      branch.unshift(e);
      e = e.prevHash ? this.blocks.get(e.prevHash) : undefined;
    }
    const forkHeight = e ? e.height : 0;
    const tipNow = this.tip();
    if (forkHeight === tipNow.height && branch.length === 0) {
      return;
    }
    const disconnected: BlockEntry[] = []; // oldest block first
    while (this.height() > forkHeight) disconnected.unshift(this.disconnectTip());
    for (const b of branch) this.connect(b);
    // Rebuild the mempool: disconnected transactions first, in chain order (oldest block first,
    // block order within a block, so parents come before the children spending them), then the
    // old mempool (in acceptance order).
    const candidates: Tx[] = [];
    for (const b of disconnected) candidates.push(...b.txs.slice(1));
    candidates.push(...[...this.mempool.values()].map((m) => m.tx));
    this.mempool.clear();
    this.mempoolSpends.clear();
    for (const tx of candidates) {
      if (this.txIndex.has(tx.getId())) continue;
      try {
        this.acceptToMempool(tx);
      } catch {
        // no longer valid on the new chain: dropped, like Core
      }
    }
  }

  /** Core `invalidateblock`: marks the block (and so its descendants) invalid and reorgs away. */
  invalidateBlock(hash: string): void {
    const entry = this.blocks.get(hash);
    if (!entry) throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, 'Block not found');
    if (entry.height === 0) throw new RpcError(RPC.MISC_ERROR, 'Cannot invalidate the genesis block'); // devnet guard
    entry.invalid = true;
    this.activateBestChain();
  }

  /** Core `reconsiderblock`: clears the invalid flag of the block, its ancestors and descendants. */
  reconsiderBlock(hash: string): void {
    const entry = this.blocks.get(hash);
    if (!entry) throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, 'Block not found');
    for (let e: BlockEntry | undefined = entry; e; e = e.prevHash ? this.blocks.get(e.prevHash) : undefined) e.invalid = false;
    for (const b of this.blocks.values()) {
      for (let e: BlockEntry | undefined = b; e; e = e.prevHash ? this.blocks.get(e.prevHash) : undefined) {
        if (e === entry) {
          b.invalid = false;
          break;
        }
      }
    }
    this.activateBestChain();
  }

  private now(): number {
    return this.mocktime || this.clock();
  }

  /** Core's `setmocktime`: 0 returns to the system clock. New blocks still follow the consensus rules (time > median time past). */
  setMockTime(t: number): void {
    if (!Number.isInteger(t) || t < 0) throw new Error('mocktime must be a non-negative integer');
    this.mocktime = t;
  }

  /** Mines `n` blocks on the active tip paying the coinbase to `script`; returns their hashes. */
  mine(n: number, script: Uint8Array): string[] {
    const hashes: string[] = [];
    for (let i = 0; i < n; i++) hashes.push(this.mineOne(script).hash);
    return hashes;
  }

  private mineOne(script: Uint8Array): BlockEntry {
    const parent = this.tip();
    const height = parent.height + 1;
    const entries = [...this.mempool.values()];
    const fees = entries.reduce((a, m) => a + m.fee, 0n);

    const cb = new Transaction();
    cb.version = 2;
    cb.addInput(new Uint8Array(32), 0xffffffff, SEQUENCE_FINAL, coinbaseScriptSig(height));
    cb.setWitness(0, [new Uint8Array(32)]); // witness reserved value
    cb.addOutput(script, subsidy(height) + fees);
    const txs = [cb, ...entries.map((m) => m.tx)];
    // BIP141 commitment: hash256(witness merkle root (coinbase wtxid = 0) || reserved value).
    const commitment = Block.calculateMerkleRoot(txs, true);
    cb.addOutput(bitcoin.script.compile([bitcoin.opcodes.OP_RETURN!, Uint8Array.from([0xaa, 0x21, 0xa9, 0xed, ...commitment])]), 0n);

    const block = new Block();
    block.version = BLOCK_VERSION;
    block.prevHash = hexToHash(parent.hash);
    block.transactions = txs;
    block.merkleRoot = Block.calculateMerkleRoot(txs);
    block.timestamp = this.blockTimeOffset !== 0
      ? Math.max(1, this.now() + this.blockTimeOffset)
      : Math.max(this.now(), parent.time + 1, parent.medianTime + 1);
    block.bits = REGTEST_BITS;
    block.nonce = 0;
    while (!block.checkProofOfWork()) block.nonce++; // regtest target: ~2 tries on average

    const entry = this.addBlock(block);
    this.connect(entry);
    for (const m of entries) this.removeFromMempool(m.txid);
    this.trimBackground();
    return entry;
  }

  // ---------------------------------------------------------------- background mempool (devnet-only)

  /**
   * Fills the background mempool to `target` transactions now, then adds `ratePerSecond` new ones
   * per second (0: none) until called again; mined blocks trim it back to `target`. (0, 0) empties it.
   */
  setBackgroundMempool(target: number, ratePerSecond: number): void {
    if (!Number.isSafeInteger(target) || target < 0 || target > 5_000_000) throw new RpcError(RPC.INVALID_PARAMETER, 'target must be an integer in 0..5000000');
    if (!Number.isFinite(ratePerSecond) || ratePerSecond < 0 || ratePerSecond > 10_000) throw new RpcError(RPC.INVALID_PARAMETER, 'rate must be in 0..10000 per second');
    this.stopBackground();
    this.backgroundTarget = target;
    if (this.background.size < target) this.addBackground(target - this.background.size);
    else this.trimBackground();
    if (ratePerSecond > 0) {
      const start = Date.now();
      let added = 0;
      this.backgroundTimer = setInterval(() => {
        const due = Math.floor(((Date.now() - start) * ratePerSecond) / 1000) - added;
        if (due > 0) {
          this.addBackground(due);
          added += due;
        }
      }, 50);
      this.backgroundTimer.unref();
    }
  }

  stopBackground(): void {
    if (this.backgroundTimer) clearInterval(this.backgroundTimer);
    this.backgroundTimer = null;
  }

  /** Drops the oldest background transactions beyond the target (a block took them). */
  private trimBackground(): void {
    let excess = this.background.size - this.backgroundTarget;
    for (const txid of this.background.keys()) {
      if (excess-- <= 0) break;
      this.background.delete(txid);
    }
  }

  /**
   * Adds `n` synthetic transactions shaped like a typical payment (version 2, one P2WPKH input
   * with a 72-byte signature and a 33-byte key in its witness, two P2WPKH outputs: 223 bytes),
   * random bytes where a real one has hashes, keys and signatures; txid = hash256 of the
   * serialization without witness.
   */
  private addBackground(n: number): void {
    const SIZE = 223;
    const buf = Buffer.alloc(n * SIZE);
    randomFillSync(buf);
    for (let i = 0; i < n; i++) {
      const raw = buf.subarray(i * SIZE, (i + 1) * SIZE);
      raw.writeUInt32LE(2, 0); // version
      raw[4] = 0x00; raw[5] = 0x01; // segwit marker, flag
      raw[6] = 1; // one input: prevout (32 random bytes) at 7..38, index at 39..42
      raw.writeUInt32LE(0, 39);
      raw[43] = 0; // empty scriptSig
      raw.writeUInt32LE(MAX_BIP125_RBF_SEQUENCE, 44);
      raw[48] = 2; // two outputs
      for (const o of [49, 80]) {
        raw.writeBigUInt64LE(BigInt(10_000 + (raw[o]! << 8) + raw[o + 1]!), o); // value
        raw[o + 8] = 22; raw[o + 9] = 0x00; raw[o + 10] = 0x14; // P2WPKH script, 20-byte hash random
      }
      raw[111] = 2; // witness items
      raw[112] = 72; raw[113] = 0x30; raw[114] = 0x45; // DER-shaped signature (random body)
      raw[185] = 33; raw[186] = 0x02; // compressed key
      raw.writeUInt32LE(0, 219); // locktime
      const h1 = createHash('sha256').update(raw.subarray(0, 4)).update(raw.subarray(6, 111)).update(raw.subarray(219)).digest();
      const txid = createHash('sha256').update(h1).digest().reverse().toString('hex');
      this.background.set(txid, raw);
    }
  }

  // ---------------------------------------------------------------- mempool

  private removeFromMempool(txid: string): void {
    const m = this.mempool.get(txid);
    if (!m) return;
    for (const input of m.tx.ins) {
      const key = outpointKey(hashToHex(input.hash), input.index);
      if (this.mempoolSpends.get(key) === txid) this.mempoolSpends.delete(key);
    }
    this.mempool.delete(txid);
  }

  /** Mempool transactions spending outputs of `txids`, transitively (not including `txids`). */
  descendants(txids: Iterable<string>): Set<string> {
    const out = new Set<string>();
    const queue = [...txids];
    while (queue.length > 0) {
      const id = queue.pop()!;
      const m = this.mempool.get(id);
      if (!m) continue;
      m.tx.outs.forEach((_o, vout) => {
        const child = this.mempoolSpends.get(outpointKey(id, vout));
        if (child && !out.has(child)) {
          out.add(child);
          queue.push(child);
        }
      });
    }
    return out;
  }

  /** Mempool txids the given mempool transaction depends on (direct parents in the mempool). */
  parents(m: MempoolEntry): string[] {
    const ids = new Set<string>();
    for (const i of m.tx.ins) {
      const id = hashToHex(i.hash);
      if (this.mempool.has(id)) ids.add(id);
    }
    return [...ids];
  }

  /**
   * Core-like mempool acceptance (`sendrawtransaction`): inputs must exist and be unspent,
   * coinbase spends mature, value in ≥ value out, fee ≥ 1 sat/vB, scripts verified for
   * P2WPKH / P2TR key path / P2PKH / P2SH-P2WPKH inputs; a mempool conflict is replaced only if
   * every conflicting transaction signals BIP125 and the new one pays more (rules 3, 4, 6).
   * Returns the txid.
   */
  acceptToMempool(tx: Tx): string {
    const txid = tx.getId();
    if (this.mempool.has(txid)) return txid;
    if (tx.isCoinbase()) throw new RpcError(RPC.VERIFY_REJECTED, 'coinbase');
    if (tx.ins.length === 0) throw new RpcError(RPC.VERIFY_REJECTED, 'bad-txns-vin-empty');
    if (tx.outs.length === 0) throw new RpcError(RPC.VERIFY_REJECTED, 'bad-txns-vout-empty');
    let valueOut = 0n;
    for (const o of tx.outs) {
      if (o.value < 0n) throw new RpcError(RPC.VERIFY_REJECTED, 'bad-txns-vout-negative');
      if (o.value > MAX_MONEY) throw new RpcError(RPC.VERIFY_REJECTED, 'bad-txns-vout-toolarge');
      valueOut += o.value;
    }
    if (valueOut > MAX_MONEY) throw new RpcError(RPC.VERIFY_REJECTED, 'bad-txns-txouttotal-toolarge');
    for (let v = 0; v < tx.outs.length; v++) {
      if (this.utxo.has(outpointKey(txid, v))) throw new RpcError(RPC.VERIFY_ALREADY_IN_CHAIN, 'Transaction outputs already in utxo set');
    }
    if (this.txIndex.has(txid)) throw new RpcError(RPC.VERIFY_ALREADY_IN_CHAIN, 'Transaction outputs already in utxo set');

    const seen = new Set<string>();
    const prevouts: Coin[] = [];
    const conflicts = new Set<string>();
    for (const input of tx.ins) {
      const prevTxid = hashToHex(input.hash);
      const key = outpointKey(prevTxid, input.index);
      if (seen.has(key)) throw new RpcError(RPC.VERIFY_REJECTED, 'bad-txns-inputs-duplicate');
      seen.add(key);
      const coin = this.findCoin(prevTxid, input.index);
      if (!coin) throw new RpcError(RPC.VERIFY_ERROR, 'bad-txns-inputs-missingorspent');
      const spender = this.mempoolSpends.get(key);
      if (spender) conflicts.add(spender);
      if (coin.coinbase) {
        const depth = this.height() + 1 - coin.height;
        if (depth < COINBASE_MATURITY) {
          throw new RpcError(RPC.VERIFY_REJECTED, `bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth ${depth}`);
        }
      }
      prevouts.push(coin);
    }
    const valueIn = prevouts.reduce((a, c) => a + c.value, 0n);
    if (valueIn < valueOut) {
      throw new RpcError(RPC.VERIFY_REJECTED, `bad-txns-in-belowout, value in (${formatBtc(valueIn)}) < value out (${formatBtc(valueOut)})`);
    }
    const fee = valueIn - valueOut;
    const vsize = tx.virtualSize();
    if (fee < BigInt(vsize)) throw new RpcError(RPC.VERIFY_REJECTED, `min relay fee not met, ${fee} < ${vsize}`);
    for (let i = 0; i < tx.ins.length; i++) verifyInput(tx, i, prevouts);

    if (conflicts.size > 0) {
      for (const c of conflicts) {
        if (!this.fullRbf && !signalsRbf(this.mempool.get(c)!.tx)) throw new RpcError(RPC.VERIFY_REJECTED, 'txn-mempool-conflict');
      }
      const evicted = new Set([...conflicts, ...this.descendants(conflicts)]);
      if (tx.ins.some((i) => evicted.has(hashToHex(i.hash)))) {
        throw new RpcError(RPC.VERIFY_REJECTED, `bad-txns-spends-conflicting-tx, ${txid} spends conflicting transaction`);
      }
      let oldFees = 0n;
      for (const id of evicted) {
        const old = this.mempool.get(id)!;
        oldFees += old.fee;
        if (conflicts.has(id) && fee * BigInt(old.vsize) <= old.fee * BigInt(vsize)) {
          throw new RpcError(
            RPC.VERIFY_REJECTED,
            `insufficient fee, rejecting replacement ${txid}; new feerate ${feeRateStr(fee, vsize)} <= old feerate ${feeRateStr(old.fee, old.vsize)}`,
          );
        }
      }
      if (fee < oldFees + BigInt(vsize)) {
        throw new RpcError(
          RPC.VERIFY_REJECTED,
          `insufficient fee, rejecting replacement ${txid}, not enough additional fees to relay; ${formatBtc(fee - oldFees)} < ${formatBtc(BigInt(vsize))}`,
        );
      }
      for (const id of evicted) this.removeFromMempool(id);
    }

    const entry: MempoolEntry = {
      tx,
      txid,
      wtxid: hashToHex(tx.getHash(true)),
      fee,
      vsize,
      weight: tx.weight(),
      time: this.now(),
      height: this.height(),
      rbf: signalsRbf(tx),
    };
    this.mempool.set(txid, entry);
    for (const input of tx.ins) this.mempoolSpends.set(outpointKey(hashToHex(input.hash), input.index), txid);
    return txid;
  }

  // ---------------------------------------------------------------- wallet

  /** Wallet coins that can be spent now: mature, confirmed or created by the wallet itself, not spent in the mempool. */
  walletCoins(): Coin[] {
    const coins: Coin[] = [];
    const tipHeight = this.height();
    for (const c of this.utxo.values()) {
      if (!this.wallet.isMine(c.script)) continue;
      // Core's wallet counts a coinbase as spendable one block later than consensus (depth > 100).
      if (c.coinbase && tipHeight - c.height + 1 < COINBASE_MATURITY + 1) continue;
      if (this.mempoolSpends.has(outpointKey(c.txid, c.vout))) continue;
      coins.push(c);
    }
    for (const m of this.mempool.values()) {
      // "trusted" unconfirmed coins: change of transactions whose inputs are all ours
      const fromUs = m.tx.ins.every((i) => {
        const prev = this.findTxOutput(hashToHex(i.hash), i.index);
        return prev !== undefined && this.wallet.isMine(prev.script);
      });
      if (!fromUs) continue;
      m.tx.outs.forEach((o, vout) => {
        if (!this.wallet.isMine(o.script) || this.mempoolSpends.has(outpointKey(m.txid, vout))) return;
        coins.push({ txid: m.txid, vout, value: o.value, script: o.script, height: -1, coinbase: false });
      });
    }
    return coins;
  }

  /** Any known output (spent or not) of a transaction in the active chain or mempool. */
  findTxOutput(txid: string, vout: number): { value: bigint; script: Uint8Array } | undefined {
    const found = this.findTx(txid);
    return found?.tx.outs[vout];
  }

  /** `getbalance`: sum of the wallet's spendable coins (mature coinbase, trusted unconfirmed). */
  balance(): bigint {
    return this.walletCoins().reduce((a, c) => a + c.value, 0n);
  }

  /**
   * Builds, signs (P2WPKH, SIGHASH_ALL) and broadcasts a wallet transaction paying `outputs`
   * (repeated scripts allowed), with change to a fresh change address when above dust.
   * Returns the txid.
   */
  send(outputs: { script: Uint8Array; value: bigint }[], opts: SendOptions = {}): string {
    const tx = this.buildWalletTx(this.walletCoins(), outputs, opts);
    return this.acceptToMempool(tx);
  }

  private buildWalletTx(available: Coin[], outputs: { script: Uint8Array; value: bigint }[], opts: SendOptions): Tx {
    const feeRate = opts.feeRate ?? 20;
    const subtract = opts.subtractFeeFrom ?? [];
    const sequence = opts.replaceable === false ? 0xfffffffe : MAX_BIP125_RBF_SEQUENCE;
    const target = outputs.reduce((a, o) => a + o.value, 0n);
    // Oldest (confirmed, highest depth) first; larger first within equal depth.
    const sorted = [...available].sort((a, b) => (a.height === -1 ? 1 : 0) - (b.height === -1 ? 1 : 0) || a.height - b.height || Number(b.value - a.value));
    const outsVbytes = outputs.reduce((a, o) => a + 9 + o.script.length, 0);
    const estimate = (nIn: number, change: boolean): bigint => BigInt(Math.ceil((11 + nIn * 68 + outsVbytes + (change ? 31 : 0)) * feeRate));
    const chosen: Coin[] = [];
    let total = 0n;
    for (const c of sorted) {
      chosen.push(c);
      total += c.value;
      const need = subtract.length > 0 ? target : target + estimate(chosen.length, true);
      if (total >= need) break;
    }
    const feeNoChange = estimate(chosen.length, false);
    if (total < (subtract.length > 0 ? target : target + feeNoChange) || chosen.length === 0) {
      throw new RpcError(RPC.WALLET_INSUFFICIENT_FUNDS, 'Insufficient funds');
    }
    const outs = outputs.map((o) => ({ ...o }));
    let fee = estimate(chosen.length, true);
    let change = subtract.length > 0 ? total - target : total - target - fee;
    if (change < 546n) {
      fee = estimate(chosen.length, false);
      change = 0n;
    }
    if (subtract.length > 0) {
      const share = fee / BigInt(subtract.length);
      subtract.forEach((idx, k) => {
        const o = outs[idx];
        if (!o) throw new RpcError(RPC.INVALID_PARAMETER, `Invalid parameter, subtractfeefromamount index ${idx} out of range`);
        o.value -= share + (k === 0 ? fee - share * BigInt(subtract.length) : 0n);
        if (o.value < 546n) throw new RpcError(RPC.WALLET_ERROR, 'The transaction amount is too small to pay the fee');
      });
      change = total - outs.reduce((a, o) => a + o.value, 0n) - fee;
      if (change < 546n) change = 0n;
    }
    const tx = new Transaction();
    tx.version = 2;
    tx.locktime = this.height(); // anti fee sniping, like Core's wallet
    for (const c of chosen) tx.addInput(hexToHash(c.txid), c.vout, sequence);
    for (const o of outs) tx.addOutput(o.script, o.value);
    if (change > 0n) tx.addOutput(this.wallet.newKey(true).script, change);
    chosen.forEach((c, i) => signP2wpkh(tx, i, this.wallet.keyForScript(c.script)!, c.value));
    return tx;
  }

  /**
   * Devnet-only: re-spends all inputs of wallet transaction `txid` (still in the mempool) to
   * `script` (default: a fresh wallet address) with a higher fee, replacing it via BIP125.
   */
  replace(txid: string, script?: Uint8Array, feeRate?: number): string {
    const m = this.mempool.get(txid);
    if (!m) throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, 'Transaction not in mempool');
    const coins: Coin[] = m.tx.ins.map((i) => {
      const prevTxid = hashToHex(i.hash);
      const out = this.findTxOutput(prevTxid, i.index);
      if (!out || !this.wallet.isMine(out.script)) throw new RpcError(RPC.WALLET_ERROR, 'Transaction contains inputs that don\'t belong to this wallet');
      return { txid: prevTxid, vout: i.index, value: out.value, script: out.script, height: 0, coinbase: false };
    });
    const total = coins.reduce((a, c) => a + c.value, 0n);
    const rate = feeRate ?? Math.max(Math.ceil((Number(m.fee) / m.vsize) * 2) + 1, 10);
    const dest = script ?? this.wallet.newKey().script;
    const tx = new Transaction();
    tx.version = 2;
    tx.locktime = this.height();
    for (const c of coins) tx.addInput(hexToHash(c.txid), c.vout, MAX_BIP125_RBF_SEQUENCE);
    const vsize = 11 + coins.length * 68 + 9 + dest.length;
    let fee = BigInt(Math.ceil(vsize * rate));
    const minFee = m.fee + BigInt(vsize) + 1n;
    if (fee < minFee) fee = minFee;
    if (total - fee < 546n) throw new RpcError(RPC.WALLET_INSUFFICIENT_FUNDS, 'Insufficient funds');
    tx.addOutput(dest, total - fee);
    coins.forEach((c, i) => signP2wpkh(tx, i, this.wallet.keyForScript(c.script)!, c.value));
    return this.acceptToMempool(tx);
  }
}

function feeRateStr(fee: bigint, vsize: number): string {
  // Core prints CFeeRate::ToString(): "0.00001000 BTC/kvB"
  return `${formatBtc((fee * 1000n) / BigInt(vsize))} BTC/kvB`;
}

function p2pkhScriptCode(hash160: Uint8Array): Uint8Array {
  return bitcoin.payments.p2pkh({ hash: hash160 }).output!;
}

function signP2wpkh(tx: Tx, index: number, key: WalletKey, value: bigint): void {
  const hash160 = key.script.subarray(2);
  const sighash = tx.hashForWitnessV0(index, p2pkhScriptCode(hash160), value, Transaction.SIGHASH_ALL);
  const sig = key.node.sign(sighash, true);
  tx.setWitness(index, [bitcoin.script.signature.encode(sig, Transaction.SIGHASH_ALL), key.pubkey]);
}

function scriptFail(reason: string): RpcError {
  return new RpcError(RPC.VERIFY_REJECTED, `mandatory-script-verify-flag-failed (${reason})`);
}

function checkEcdsa(hash: (hashType: number) => Uint8Array, sigWithType: Uint8Array, pubkey: Uint8Array): void {
  let decoded: { signature: Uint8Array; hashType: number };
  try {
    decoded = bitcoin.script.signature.decode(sigWithType);
  } catch {
    throw scriptFail('Non-canonical DER signature');
  }
  if (!ecc.isPoint(pubkey)) throw scriptFail('Public key is neither compressed or uncompressed');
  if (!ecc.verify(hash(decoded.hashType), pubkey, decoded.signature)) {
    throw scriptFail('Signature must be zero for failed CHECK(MULTI)SIG operation');
  }
}

/**
 * Verifies input `i` against its previous output for the script types the devnet understands:
 * P2WPKH, P2SH-P2WPKH, P2PKH and P2TR key-path. Other script types are accepted unchecked
 * (a devnet limitation).
 */
export function verifyInput(tx: Tx, i: number, prevouts: Coin[]): void {
  const input = tx.ins[i]!;
  const prev = prevouts[i]!;
  const spk = prev.script;
  const witness = input.witness;
  const isP2wpkh = (s: Uint8Array): boolean => s.length === 22 && s[0] === 0x00 && s[1] === 0x14;
  const verifyWpkh = (program: Uint8Array): void => {
    if (witness.length !== 2) throw scriptFail('Witness program hash mismatch');
    const pubkey = witness[1]!;
    if (!bytesEqual(bitcoin.crypto.hash160(pubkey), program)) throw scriptFail('Witness program hash mismatch');
    checkEcdsa((ht) => tx.hashForWitnessV0(i, p2pkhScriptCode(program), prev.value, ht), witness[0]!, pubkey);
  };
  if (isP2wpkh(spk)) {
    if (input.script.length > 0) throw scriptFail('Witness requires empty scriptSig');
    verifyWpkh(spk.subarray(2));
    return;
  }
  if (spk.length === 34 && spk[0] === 0x51 && spk[1] === 0x20) {
    // P2TR: key path (one element, optional annex not supported); script path accepted unchecked.
    if (witness.length === 1) {
      const sig = witness[0]!;
      if (sig.length !== 64 && sig.length !== 65) throw scriptFail('Invalid Schnorr signature size');
      const hashType = sig.length === 65 ? sig[64]! : Transaction.SIGHASH_DEFAULT;
      const hash = tx.hashForWitnessV1(i, prevouts.map((p) => p.script), prevouts.map((p) => p.value), hashType);
      if (!ecc.verifySchnorr(hash, spk.subarray(2), sig.subarray(0, 64))) throw scriptFail('Invalid Schnorr signature');
    }
    return;
  }
  const chunks = bitcoin.script.decompile(input.script) ?? [];
  if (spk.length === 25 && spk[0] === 0x76 && spk[1] === 0xa9 && spk[2] === 0x14 && spk[23] === 0x88 && spk[24] === 0xac) {
    const [sig, pubkey] = chunks;
    if (chunks.length !== 2 || !(sig instanceof Uint8Array) || !(pubkey instanceof Uint8Array)) throw scriptFail('Operation not valid with the current stack size');
    if (!bytesEqual(bitcoin.crypto.hash160(pubkey), spk.subarray(3, 23))) throw scriptFail('Script failed an OP_EQUALVERIFY operation');
    checkEcdsa((ht) => tx.hashForSignature(i, spk, ht), sig, pubkey);
    return;
  }
  if (spk.length === 23 && spk[0] === 0xa9 && spk[1] === 0x14 && spk[22] === 0x87) {
    const redeem = chunks[chunks.length - 1];
    if (!(redeem instanceof Uint8Array) || !bytesEqual(bitcoin.crypto.hash160(redeem), spk.subarray(2, 22))) {
      throw scriptFail('Script evaluated without error but finished with a false/empty top stack element');
    }
    if (isP2wpkh(redeem)) verifyWpkh(redeem.subarray(2));
    return;
  }
}

export { toHex, REGTEST };
