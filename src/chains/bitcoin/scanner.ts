/**
 * Local parsing of raw Bitcoin blocks (`getblock <hash> 0`, Esplora `/block/:hash/raw`) and raw
 * transactions (`getrawtransaction`, mempool), matching every output script against the
 * `WatchedScripts` set (docs/architecture.md §5).
 *
 * One pass over the bytes: outputs are hashed in place (no copies, no strings), txids (double
 * SHA-256 of the non-witness serialisation) are computed only for transactions with a match,
 * values are read as bigint only for matches. Spent outpoints (for noticing double-spends of
 * pending payments) are recorded as offsets into the block (one Uint32 per input, no strings);
 * `SpentOutpoints` turns them into `<prev txid>:<vout>` keys on demand.
 */
import { sha256 } from '@noble/hashes/sha2';
import { KassaError } from '../../errors.ts';
import { WatchedScripts } from './watched.ts';

export { WatchedScripts };

export interface BlockHeaderInfo {
  /** Block hash, display (big-endian) hex. */
  hash: string;
  prevHash: string;
  merkleRoot: string;
  version: number;
  /** Block timestamp, seconds since the epoch. */
  time: number;
  bits: number;
  nonce: number;
}

export interface OutputMatch {
  txid: string;
  vout: number;
  /** Satoshis. */
  value: bigint;
  /** The matched scriptPubKey (a copy). */
  script: Uint8Array;
  /** Position of the transaction in the block (0 = coinbase); 0 for `scanTransaction`. */
  txIndex: number;
  /** True for outputs of a coinbase transaction (spendable only after 100 confirmations). */
  coinbase: boolean;
}

export interface BlockScanResult {
  header: BlockHeaderInfo;
  txCount: number;
  inputCount: number;
  outputCount: number;
  matches: OutputMatch[];
  /** Outpoints spent by every non-coinbase input of the block. */
  spent: SpentOutpoints;
}

export interface TxScanResult {
  txid: string;
  /** Witness txid (equals txid for a non-segwit transaction). */
  wtxid: string;
  segwit: boolean;
  inputCount: number;
  outputCount: number;
  matches: OutputMatch[];
  /** `<prev txid>:<vout>` of every input (empty for a coinbase). */
  spent: string[];
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Hex of `len` bytes read backwards (Bitcoin's display order for hashes). */
function reversedHex(buf: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let i = off + len - 1; i >= off; i--) s += HEX[buf[i]!];
  return s;
}

function malformed(what: string): KassaError {
  return new KassaError('bitcoin_data_malformed', `Malformed Bitcoin ${what}.`, { status: 502, retryable: false });
}

function dsha256(...parts: Uint8Array[]): Uint8Array {
  const h = sha256.create();
  for (const p of parts) h.update(p);
  return sha256(h.digest());
}

function readU32(buf: Uint8Array, p: number): number {
  return (buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24)) >>> 0;
}

/** Parses the 80-byte block header at the start of a raw block. */
export function parseBlockHeader(raw: Uint8Array): BlockHeaderInfo {
  if (raw.length < 80) throw malformed('block header (shorter than 80 bytes)');
  return {
    hash: reversedHex(dsha256(raw.subarray(0, 80)), 0, 32),
    prevHash: reversedHex(raw, 4, 32),
    merkleRoot: reversedHex(raw, 36, 32),
    version: readU32(raw, 0) | 0,
    time: readU32(raw, 68),
    bits: readU32(raw, 72),
    nonce: readU32(raw, 76),
  };
}

/** Mutable cursor + counters for one scan (one per call: no shared state). */
interface Cursor {
  pos: number;
  inputs: number;
  outputs: number;
  /** Offsets of the spent outpoints (36 bytes each), when recording into a block-level list. */
  spentOffsets: Uint32Array | null;
  spentCount: number;
}

function readVarInt(buf: Uint8Array, c: Cursor): number {
  const p = c.pos;
  const b = buf[p]!;
  if (b < 0xfd) {
    c.pos = p + 1;
    return b;
  }
  if (b === 0xfd) {
    c.pos = p + 3;
    return buf[p + 1]! | (buf[p + 2]! << 8);
  }
  if (b === 0xfe) {
    c.pos = p + 5;
    return readU32(buf, p + 1);
  }
  // 0xff: 8 bytes. Anything above 2^32 cannot fit in a block or transaction.
  c.pos = p + 9;
  if (readU32(buf, p + 5) !== 0) throw malformed('data (varint too large)');
  return readU32(buf, p + 1);
}

/**
 * Scans one transaction starting at `c.pos` and ending at or before `end`; appends matches and,
 * when `spent` is given, spent outpoints. Returns the txid if it was computed (a match, or
 * `wantTxid`), else ''.
 */
function scanTx(
  buf: Uint8Array,
  end: number,
  c: Cursor,
  watched: WatchedScripts | null,
  txIndex: number,
  matches: OutputMatch[],
  spent: string[] | null,
  wantTxid: boolean,
): { txid: string; segwit: boolean; start: number } {
  const start = c.pos;
  c.pos += 4; // version
  let segwit = false;
  if (buf[c.pos] === 0 && buf[c.pos + 1] === 1) {
    segwit = true;
    c.pos += 2;
  }
  const bodyStart = c.pos;
  const nIn = readVarInt(buf, c);
  if (!(c.pos + nIn * 41 <= end)) throw malformed('transaction (input count exceeds data)');
  const coinbase = txIndex === 0 && nIn === 1 && isNullOutpoint(buf, c.pos);
  for (let i = 0; i < nIn; i++) {
    const op = c.pos;
    c.pos += 36;
    const scriptLen = readVarInt(buf, c);
    c.pos += scriptLen + 4;
    if (!(c.pos <= end)) throw malformed('transaction (truncated input)');
    if (!coinbase) {
      if (c.spentOffsets !== null) c.spentOffsets[c.spentCount++] = op;
      else if (spent !== null) spent.push(reversedHex(buf, op, 32) + ':' + readU32(buf, op + 32));
    }
  }
  c.inputs += nIn;
  const nOut = readVarInt(buf, c);
  if (!(c.pos + nOut * 9 <= end)) throw malformed('transaction (output count exceeds data)');
  const firstMatch = matches.length;
  for (let v = 0; v < nOut; v++) {
    const valuePos = c.pos;
    c.pos += 8;
    const scriptLen = readVarInt(buf, c);
    const scriptPos = c.pos;
    c.pos += scriptLen;
    if (!(c.pos <= end)) throw malformed('transaction (truncated output)');
    if (watched !== null && watched.hasAt(buf, scriptPos, scriptLen)) {
      const value = BigInt(readU32(buf, valuePos)) + (BigInt(readU32(buf, valuePos + 4)) << 32n);
      matches.push({ txid: '', vout: v, value, script: buf.slice(scriptPos, scriptPos + scriptLen), txIndex, coinbase });
    }
  }
  c.outputs += nOut;
  const witnessStart = c.pos;
  if (segwit) {
    for (let i = 0; i < nIn; i++) {
      const items = readVarInt(buf, c);
      for (let k = 0; k < items; k++) {
        const len = readVarInt(buf, c);
        c.pos += len;
      }
      if (!(c.pos <= end)) throw malformed('transaction (truncated witness)');
    }
  }
  const lockPos = c.pos;
  c.pos += 4;
  if (!(c.pos <= end)) throw malformed('transaction (truncated)');
  let txid = '';
  if (wantTxid || matches.length > firstMatch) {
    const hash = segwit
      ? dsha256(buf.subarray(start, start + 4), buf.subarray(bodyStart, witnessStart), buf.subarray(lockPos, lockPos + 4))
      : dsha256(buf.subarray(start, c.pos));
    txid = reversedHex(hash, 0, 32);
    for (let m = firstMatch; m < matches.length; m++) matches[m]!.txid = txid;
  }
  return { txid, segwit, start };
}

function isNullOutpoint(buf: Uint8Array, p: number): boolean {
  for (let i = 0; i < 32; i++) if (buf[p + i] !== 0) return false;
  return readU32(buf, p + 32) === 0xffffffff;
}

/**
 * Scans a raw block: header, every transaction (segwit aware), outputs matched against
 * `watched`, txids computed only for transactions with a match. Throws `bitcoin_data_malformed`
 * (502, not retryable) on truncated or inconsistent data.
 */
export function scanBlock(raw: Uint8Array, watched: WatchedScripts | null): BlockScanResult {
  const header = parseBlockHeader(raw);
  // Every input takes at least 41 bytes: an upper bound on the inputs, so no growing.
  const c: Cursor = { pos: 80, inputs: 0, outputs: 0, spentOffsets: new Uint32Array(Math.ceil(raw.length / 41)), spentCount: 0 };
  const end = raw.length;
  const txCount = readVarInt(raw, c);
  if (txCount === 0 || !(c.pos + txCount * 60 <= end)) throw malformed('block (transaction count exceeds data)');
  const matches: OutputMatch[] = [];
  for (let t = 0; t < txCount; t++) scanTx(raw, end, c, watched, t, matches, null, false);
  if (c.pos !== end) throw malformed(`block (${end - c.pos} unexpected bytes after the last transaction)`);
  const spent = new SpentOutpoints(raw, c.spentOffsets!.subarray(0, c.spentCount));
  return { header, txCount, inputCount: c.inputs, outputCount: c.outputs, matches, spent };
}

/**
 * Scans one raw transaction (mempool): txid always computed, matches against `watched`, and the
 * outpoints its inputs spend.
 */
export function scanTransaction(raw: Uint8Array, watched: WatchedScripts | null): TxScanResult {
  const c: Cursor = { pos: 0, inputs: 0, outputs: 0, spentOffsets: null, spentCount: 0 };
  const matches: OutputMatch[] = [];
  const spent: string[] = [];
  if (raw.length < 10) throw malformed('transaction (too short)');
  const { txid, segwit } = scanTx(raw, raw.length, c, watched, -1, matches, spent, true);
  if (c.pos !== raw.length) throw malformed('transaction (unexpected trailing bytes)');
  for (const m of matches) m.txIndex = 0;
  const coinbase = c.inputs === 1 && isNullOutpoint(raw, spentInputPos(raw, segwit));
  if (coinbase) {
    spent.length = 0;
    for (const m of matches) m.coinbase = true;
  }
  const wtxid = segwit ? reversedHex(dsha256(raw), 0, 32) : txid;
  return { txid, wtxid, segwit, inputCount: c.inputs, outputCount: c.outputs, matches, spent };
}

function spentInputPos(raw: Uint8Array, segwit: boolean): number {
  const c: Cursor = { pos: segwit ? 6 : 4, inputs: 0, outputs: 0, spentOffsets: null, spentCount: 0 };
  readVarInt(raw, c);
  return c.pos;
}

/** Outpoint key used in `spent`: `<txid>:<vout>`. */
export function outpointKey(txid: string, vout: number): string {
  return `${txid}:${vout}`;
}

/** Parses `<txid>:<vout>` into the 36-byte serialised outpoint (internal byte order); null if malformed. */
function outpointBytes(key: string): Uint8Array | null {
  const m = /^([0-9a-fA-F]{64}):(\d{1,10})$/.exec(key);
  if (!m) return null;
  const vout = Number(m[2]);
  if (vout > 0xffffffff) return null;
  const out = new Uint8Array(36);
  const hex = m[1]!;
  for (let i = 0; i < 32; i++) out[31 - i] = parseInt(hex.substr(i * 2, 2), 16);
  out[32] = vout & 0xff;
  out[33] = (vout >>> 8) & 0xff;
  out[34] = (vout >>> 16) & 0xff;
  out[35] = vout >>> 24;
  return out;
}

/**
 * The outpoints spent by a block's inputs, kept as offsets into the raw block (cheap to collect).
 * Keys are `<prev txid>:<vout>` with the txid in display hex, built only when asked for.
 */
export class SpentOutpoints {
  constructor(
    private readonly buf: Uint8Array,
    private readonly offsets: Uint32Array,
  ) {}

  get size(): number {
    return this.offsets.length;
  }

  /** The i-th spent outpoint as `<txid>:<vout>`. */
  key(i: number): string {
    const off = this.offsets[i];
    if (off === undefined) throw new RangeError(`spent outpoint ${i} out of range`);
    return reversedHex(this.buf, off, 32) + ':' + readU32(this.buf, off + 32);
  }

  /** All keys (builds one string per input: use `spentAmong` when you only need a few). */
  toArray(): string[] {
    const out = new Array<string>(this.offsets.length);
    for (let i = 0; i < out.length; i++) out[i] = this.key(i);
    return out;
  }

  /**
   * Which of the given outpoint keys (`<txid>:<vout>`) are spent here: one pass over the inputs,
   * no per-input strings. Typical use: the inputs of pending (mempool) payments, to notice a
   * conflicting transaction that double-spends them.
   */
  spentAmong(keys: Iterable<string>): string[] {
    const byPrefix = new Map<number, { key: string; bytes: Uint8Array }[]>();
    for (const raw of keys) {
      const key = raw.toLowerCase();
      const bytes = outpointBytes(key);
      if (!bytes) continue;
      const prefix = readU32(bytes, 0);
      const list = byPrefix.get(prefix);
      if (list) list.push({ key, bytes });
      else byPrefix.set(prefix, [{ key, bytes }]);
    }
    const found: string[] = [];
    if (byPrefix.size === 0) return found;
    const buf = this.buf;
    for (const off of this.offsets) {
      const list = byPrefix.get(readU32(buf, off));
      if (!list) continue;
      for (const cand of list) {
        let j = 0;
        while (j < 36 && cand.bytes[j] === buf[off + j]) j++;
        if (j === 36 && !found.includes(cand.key)) found.push(cand.key);
      }
    }
    return found;
  }

  /** True if the outpoint `<txid>:<vout>` is spent here. */
  has(key: string): boolean {
    return this.spentAmong([key]).length > 0;
  }
}
