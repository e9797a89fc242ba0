/**
 * Bitcoin Core JSON-RPC methods served by the devnet, with Core's parameter handling, result
 * shapes and error codes. Methods prefixed `devnet_` are devnet-only test helpers (not Core):
 * Kassa's watcher must never call them.
 */
import * as bitcoin from 'bitcoinjs-lib';
import { DevnetChain, REGTEST_DIFFICULTY, type BlockEntry } from './chain.ts';
import { REGTEST } from './wallet.ts';
import { RPC, RpcError, btc, fromHex, hashToHex, isHex, jsonTypeName, parseBtcAmount, toHex } from './util.ts';

type Tx = bitcoin.Transaction;

export const CORE_VERSION = 280000;
export const CORE_SUBVERSION = '/Satoshi:28.0.0/';

class Params {
  constructor(
    readonly method: string,
    readonly values: unknown[],
    readonly names: string[],
  ) {}

  has(i: number): boolean {
    return this.values[i] !== undefined && this.values[i] !== null;
  }

  private mismatch(i: number, expected: string): RpcError {
    const v = this.values[i];
    const key = `Position ${i + 1} (${this.names[i] ?? 'arg'})`;
    const body = `{\n    ${JSON.stringify(key)}: ${JSON.stringify(`JSON value of type ${jsonTypeName(v)} is not of expected type ${expected}`)}\n}`;
    return new RpcError(RPC.TYPE_ERROR, `Wrong type passed:\n${body}`);
  }

  int(i: number, def?: number): number {
    if (!this.has(i)) {
      if (def !== undefined) return def;
      throw usage(this.method);
    }
    const v = this.values[i];
    if (typeof v !== 'number') throw this.mismatch(i, 'number');
    if (!Number.isInteger(v)) throw new RpcError(RPC.TYPE_ERROR, 'JSON integer out of range');
    return v;
  }

  str(i: number, def?: string): string {
    if (!this.has(i)) {
      if (def !== undefined) return def;
      throw usage(this.method);
    }
    const v = this.values[i];
    if (typeof v !== 'string') throw this.mismatch(i, 'string');
    return v;
  }

  bool(i: number, def: boolean): boolean {
    if (!this.has(i)) return def;
    const v = this.values[i];
    if (typeof v !== 'boolean') throw this.mismatch(i, 'bool');
    return v;
  }

  /** Core's ParseHashV. */
  hash(i: number): string {
    const s = this.str(i);
    const name = this.names[i] ?? 'hash';
    if (s.length !== 64) throw new RpcError(RPC.INVALID_PARAMETER, `${name} must be of length 64 (not ${s.length}, for '${s}')`);
    if (!isHex(s)) throw new RpcError(RPC.INVALID_PARAMETER, `${name} must be hexadecimal string (not '${s}')`);
    return s.toLowerCase();
  }

  /** Verbosity given as bool (legacy) or number. */
  verbosity(i: number, def: number): number {
    if (!this.has(i)) return def;
    const v = this.values[i];
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    throw this.mismatch(i, 'number');
  }
}

interface MethodSpec {
  names: string[];
  required: number;
  usage: string;
  run: (p: Params) => unknown;
}

function usage(method: string): RpcError {
  const spec = specs.get(method);
  return new RpcError(RPC.MISC_ERROR, `${method}${spec && spec.usage ? ` ${spec.usage}` : ''}\n\n(devnet: wrong number or type of parameters)`);
}

const specs = new Map<string, MethodSpec>();

// ------------------------------------------------------------------- JSON shapes

const OP_NAMES = new Map<number, string>(Object.entries(bitcoin.opcodes).map(([k, v]) => [v as number, k] as const));

function scriptNumToString(b: Uint8Array): string {
  try {
    return String(bitcoin.script.number.decode(b, 4));
  } catch {
    return toHex(b);
  }
}

/** Core-like ScriptToAsmStr (without sighash decoding). */
export function scriptAsm(script: Uint8Array): string {
  const chunks = bitcoin.script.decompile(script);
  if (!chunks) return '[error]';
  return chunks
    .map((c) => {
      if (c instanceof Uint8Array) return c.length <= 4 ? scriptNumToString(c) : toHex(c);
      if (c === bitcoin.opcodes.OP_0) return '0';
      if (c === bitcoin.opcodes.OP_1NEGATE) return '-1';
      if (c >= bitcoin.opcodes.OP_1 && c <= bitcoin.opcodes.OP_16) return String(c - bitcoin.opcodes.OP_1 + 1);
      return OP_NAMES.get(c) ?? 'OP_UNKNOWN';
    })
    .join(' ');
}

export function scriptType(s: Uint8Array): string {
  const n = s.length;
  if (n === 25 && s[0] === 0x76 && s[1] === 0xa9 && s[2] === 0x14 && s[23] === 0x88 && s[24] === 0xac) return 'pubkeyhash';
  if (n === 23 && s[0] === 0xa9 && s[1] === 0x14 && s[22] === 0x87) return 'scripthash';
  if (n === 22 && s[0] === 0x00 && s[1] === 0x14) return 'witness_v0_keyhash';
  if (n === 34 && s[0] === 0x00 && s[1] === 0x20) return 'witness_v0_scripthash';
  if (n === 34 && s[0] === 0x51 && s[1] === 0x20) return 'witness_v1_taproot';
  if (n === 4 && s[0] === 0x51 && s[1] === 0x02 && s[2] === 0x4e && s[3] === 0x73) return 'anchor';
  if (n >= 4 && n <= 42 && s[0] !== undefined && (s[0] === 0 || (s[0] >= 0x51 && s[0] <= 0x60)) && s[1] === n - 2) return 'witness_unknown';
  if ((n === 35 || n === 67) && s[n - 1] === 0xac && s[0] === n - 2) return 'pubkey';
  if (n > 0 && s[0] === 0x6a) return 'nulldata';
  return 'nonstandard';
}

export function scriptPubKeyJson(script: Uint8Array): Record<string, unknown> {
  let address: string | undefined;
  try {
    address = bitcoin.address.fromOutputScript(script, REGTEST);
  } catch {
    address = undefined;
  }
  return { asm: scriptAsm(script), hex: toHex(script), address, type: scriptType(script) };
}

export function txJson(tx: Tx): Record<string, unknown> {
  const coinbase = tx.isCoinbase();
  return {
    txid: tx.getId(),
    hash: hashToHex(tx.getHash(true)),
    version: tx.version,
    size: tx.byteLength(),
    vsize: tx.virtualSize(),
    weight: tx.weight(),
    locktime: tx.locktime,
    vin: tx.ins.map((i) => {
      const witness = i.witness.length > 0 ? i.witness.map((w) => toHex(w)) : undefined;
      if (coinbase) return { coinbase: toHex(i.script), txinwitness: witness, sequence: i.sequence };
      return {
        txid: hashToHex(i.hash),
        vout: i.index,
        scriptSig: { asm: scriptAsm(i.script), hex: toHex(i.script) },
        txinwitness: witness,
        sequence: i.sequence,
      };
    }),
    vout: tx.outs.map((o, n) => ({ value: btc(o.value), n, scriptPubKey: scriptPubKeyJson(o.script) })),
  };
}

function headerJson(chain: DevnetChain, e: BlockEntry): Record<string, unknown> {
  const next = chain.nextInActive(e);
  return {
    hash: e.hash,
    confirmations: chain.confirmations(e),
    height: e.height,
    version: e.block.version,
    versionHex: (e.block.version >>> 0).toString(16).padStart(8, '0'),
    merkleroot: hashToHex(e.block.merkleRoot!),
    time: e.time,
    mediantime: e.medianTime,
    nonce: e.block.nonce,
    bits: (e.block.bits >>> 0).toString(16).padStart(8, '0'),
    difficulty: REGTEST_DIFFICULTY,
    chainwork: chain.chainwork(e),
    nTx: e.txs.length,
    previousblockhash: e.prevHash ?? undefined,
    nextblockhash: next?.hash,
  };
}

function mempoolEntryJson(chain: DevnetChain, txid: string): Record<string, unknown> {
  const m = chain.mempool.get(txid)!;
  const ancestors = new Set<string>();
  const queue = chain.parents(m);
  while (queue.length) {
    const id = queue.pop()!;
    if (ancestors.has(id)) continue;
    ancestors.add(id);
    queue.push(...chain.parents(chain.mempool.get(id)!));
  }
  const desc = chain.descendants([txid]);
  const sum = (ids: Iterable<string>, f: (id: string) => bigint): bigint => [...ids].reduce((a, id) => a + f(id), 0n);
  const fee = (id: string): bigint => chain.mempool.get(id)!.fee;
  const vs = (id: string): bigint => BigInt(chain.mempool.get(id)!.vsize);
  const spentby = new Set<string>();
  m.tx.outs.forEach((_o, vout) => {
    const s = chain.mempoolSpender(txid, vout);
    if (s) spentby.add(s);
  });
  return {
    vsize: m.vsize,
    weight: m.weight,
    time: m.time,
    height: m.height,
    descendantcount: desc.size + 1,
    descendantsize: Number(sum(desc, vs)) + m.vsize,
    ancestorcount: ancestors.size + 1,
    ancestorsize: Number(sum(ancestors, vs)) + m.vsize,
    wtxid: m.wtxid,
    fees: {
      base: btc(m.fee),
      modified: btc(m.fee),
      ancestor: btc(sum(ancestors, fee) + m.fee),
      descendant: btc(sum(desc, fee) + m.fee),
    },
    depends: chain.parents(m),
    spentby: [...spentby],
    'bip125-replaceable': m.rbf || [...ancestors].some((id) => chain.mempool.get(id)!.rbf),
    unbroadcast: false,
  };
}

function addressScript(address: string, msg: string): Uint8Array {
  try {
    return bitcoin.address.toOutputScript(address, REGTEST);
  } catch {
    throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, msg);
  }
}

function blockOrThrow(chain: DevnetChain, hash: string): BlockEntry {
  const e = chain.blocks.get(hash);
  if (!e) throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, 'Block not found');
  return e;
}

function feeRateParam(p: Params, i: number): number | undefined {
  if (!p.has(i)) return undefined;
  const v = p.values[i];
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new RpcError(RPC.INVALID_PARAMETER, 'Invalid fee_rate (must be a positive number of sat/vB)');
  return n;
}

// ------------------------------------------------------------------- methods

function def(name: string, names: string[], required: number, usageText: string, run: (p: Params, chain: DevnetChain) => unknown): void {
  specs.set(name, { names, required, usage: usageText, run: run as (p: Params) => unknown });
}

def('getblockchaininfo', [], 0, '', (_p, c) => {
  const tip = c.tip();
  return {
    chain: 'regtest',
    blocks: tip.height,
    headers: tip.height,
    bestblockhash: tip.hash,
    difficulty: REGTEST_DIFFICULTY,
    time: tip.time,
    mediantime: tip.medianTime,
    verificationprogress: 1,
    initialblockdownload: false,
    chainwork: c.chainwork(tip),
    size_on_disk: [...c.blocks.values()].reduce((a, b) => a + b.size, 0),
    pruned: false,
    warnings: [],
  };
});

def('getblockcount', [], 0, '', (_p, c) => c.height());
def('getbestblockhash', [], 0, '', (_p, c) => c.tip().hash);

def('getblockhash', ['height'], 1, 'height', (p, c) => {
  const h = p.int(0);
  const e = c.active[h];
  if (h < 0 || !e) throw new RpcError(RPC.INVALID_PARAMETER, 'Block height out of range');
  return e.hash;
});

def('getblockheader', ['blockhash', 'verbose'], 1, '"blockhash" ( verbose )', (p, c) => {
  const e = blockOrThrow(c, p.hash(0));
  return p.bool(1, true) ? headerJson(c, e) : toHex(e.header);
});

def('getblock', ['blockhash', 'verbosity'], 1, '"blockhash" ( verbosity )', (p, c) => {
  const e = blockOrThrow(c, p.hash(0));
  const verbosity = p.verbosity(1, 1);
  if (verbosity <= 0) return toHex(e.raw);
  const h = headerJson(c, e);
  const { nTx, previousblockhash, nextblockhash, ...rest } = h;
  return {
    ...rest,
    nTx,
    previousblockhash,
    nextblockhash,
    strippedsize: e.strippedSize,
    size: e.size,
    weight: e.weight,
    tx: verbosity === 1 ? e.txids : e.txs.map((t) => ({ ...txJson(t), hex: toHex(t.toBuffer()) })),
  };
});

def('getchaintips', [], 0, '', (_p, c) => {
  const hasChild = new Set<string>();
  for (const b of c.blocks.values()) if (b.prevHash) hasChild.add(b.prevHash);
  const tips = [...c.blocks.values()].filter((b) => !hasChild.has(b.hash) || b === c.tip());
  return tips.map((t) => {
    let fork: BlockEntry = t;
    while (!c.isActive(fork) && fork.prevHash) fork = c.blocks.get(fork.prevHash)!;
    let invalid = false;
    for (let e: BlockEntry | undefined = t; e; e = e.prevHash ? c.blocks.get(e.prevHash) : undefined) if (e.invalid) invalid = true;
    const status = c.isActive(t) ? 'active' : invalid ? 'invalid' : 'valid-fork';
    return { height: t.height, hash: t.hash, branchlen: t.height - fork.height, status };
  });
});

def('getrawmempool', ['verbose', 'mempool_sequence'], 0, '( verbose mempool_sequence )', (p, c) => {
  if (!p.bool(0, false)) return [...c.mempool.keys(), ...c.background.keys()];
  // Verbose: the ordinary mempool only (background transactions have no fee or ancestry data).
  const out: Record<string, unknown> = {};
  for (const id of c.mempool.keys()) out[id] = mempoolEntryJson(c, id);
  return out;
});

def('getmempoolentry', ['txid'], 1, '"txid"', (p, c) => {
  const id = p.hash(0);
  if (!c.mempool.has(id)) throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, 'Transaction not in mempool');
  return mempoolEntryJson(c, id);
});

def('getmempoolinfo', [], 0, '', (_p, c) => {
  const entries = [...c.mempool.values()];
  let backgroundBytes = 0;
  for (const raw of c.background.values()) backgroundBytes += raw.length;
  return {
    loaded: true,
    size: entries.length + c.background.size,
    bytes: entries.reduce((a, m) => a + m.vsize, 0) + backgroundBytes,
    usage: entries.reduce((a, m) => a + m.weight, 0),
    total_fee: btc(entries.reduce((a, m) => a + m.fee, 0n)),
    maxmempool: 300_000_000,
    mempoolminfee: btc(1000n),
    minrelaytxfee: btc(1000n),
    incrementalrelayfee: btc(1000n),
    unbroadcastcount: 0,
    fullrbf: false,
  };
});

def('getrawtransaction', ['txid', 'verbosity', 'blockhash'], 1, '"txid" ( verbosity "blockhash" )', (p, c) => {
  const txid = p.hash(0);
  const verbosity = p.verbosity(1, 0);
  let tx: Tx | undefined;
  let block: BlockEntry | undefined;
  const withBlockHash = p.has(2);
  if (withBlockHash) {
    const bh = p.hash(2);
    block = c.blocks.get(bh);
    if (!block) throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, 'Block hash not found');
    const i = block.txids.indexOf(txid);
    if (i < 0) throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, 'No such transaction found in the provided block. Use gettransaction for wallet transactions.');
    tx = block.txs[i];
  } else if (c.background.has(txid)) {
    const raw = c.background.get(txid)!;
    if (verbosity <= 0) return toHex(raw);
    tx = bitcoin.Transaction.fromBuffer(raw);
  } else {
    const found = c.findTx(txid);
    if (!found) throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, 'No such mempool or blockchain transaction. Use gettransaction for wallet transactions.');
    tx = found.tx;
    block = found.block;
  }
  const hex = toHex(tx!.toBuffer());
  if (verbosity <= 0) return hex;
  const out: Record<string, unknown> = {};
  if (withBlockHash) out.in_active_chain = c.isActive(block!);
  Object.assign(out, txJson(tx!), { hex });
  if (block) {
    out.blockhash = block.hash;
    if (c.isActive(block)) {
      out.confirmations = c.confirmations(block);
      out.time = block.time;
      out.blocktime = block.time;
    } else {
      out.confirmations = 0;
    }
  }
  return out;
});

def('decoderawtransaction', ['hexstring', 'iswitness'], 1, '"hexstring" ( iswitness )', (p) => {
  const hex = p.str(0);
  try {
    return txJson(bitcoin.Transaction.fromHex(hex));
  } catch {
    throw new RpcError(RPC.DESERIALIZATION_ERROR, 'TX decode failed');
  }
});

def('gettxout', ['txid', 'n', 'include_mempool'], 2, '"txid" n ( include_mempool )', (p, c) => {
  const txid = p.hash(0);
  const n = p.int(1);
  const includeMempool = p.bool(2, true);
  const coin = includeMempool ? c.findCoin(txid, n) : c.utxo.get(`${txid}:${n}`);
  if (!coin) return null;
  if (includeMempool && c.mempoolSpender(txid, n)) return null;
  return {
    bestblock: c.tip().hash,
    confirmations: coin.height < 0 ? 0 : c.height() - coin.height + 1,
    value: btc(coin.value),
    scriptPubKey: scriptPubKeyJson(coin.script),
    coinbase: coin.coinbase,
  };
});

def('sendrawtransaction', ['hexstring', 'maxfeerate', 'maxburnamount'], 1, '"hexstring" ( maxfeerate maxburnamount )', (p, c) => {
  const hex = p.str(0);
  let tx: Tx;
  try {
    if (!isHex(hex)) throw new Error('not hex');
    tx = bitcoin.Transaction.fromBuffer(fromHex(hex));
  } catch {
    throw new RpcError(RPC.DESERIALIZATION_ERROR, 'TX decode failed. Make sure the tx has at least one input.');
  }
  return c.acceptToMempool(tx);
});

def('generatetoaddress', ['nblocks', 'address', 'maxtries'], 2, 'nblocks "address" ( maxtries )', (p, c) => {
  const n = p.int(0);
  const address = p.str(1);
  const script = addressScript(address, 'Error: Invalid address');
  if (n < 0) throw new RpcError(RPC.INVALID_PARAMETER, 'Invalid nblocks');
  return c.mine(n, script);
});

def('setmocktime', ['timestamp'], 1, 'timestamp', (p, c) => {
  const t = p.int(0);
  if (t < 0) throw new RpcError(RPC.INVALID_PARAMETER, 'Mocktime cannot be negative: ' + t + '.');
  c.setMockTime(t);
  return null;
});

def('invalidateblock', ['blockhash'], 1, '"blockhash"', (p, c) => {
  c.invalidateBlock(p.hash(0));
  return null;
});

def('reconsiderblock', ['blockhash'], 1, '"blockhash"', (p, c) => {
  c.reconsiderBlock(p.hash(0));
  return null;
});

def('getnewaddress', ['label', 'address_type'], 0, '( "label" "address_type" )', (p, c) => {
  p.str(0, '');
  const type = p.str(1, 'bech32');
  if (type !== 'bech32') throw new RpcError(RPC.INVALID_ADDRESS_OR_KEY, `Unknown address type '${type}' (the devnet wallet only makes bech32 P2WPKH addresses)`);
  return c.wallet.newKey().address;
});

def('getbalance', ['dummy', 'minconf', 'include_watchonly', 'avoid_reuse'], 0, '( "dummy" minconf include_watchonly avoid_reuse )', (p, c) => {
  if (p.has(0) && p.values[0] !== '*') throw new RpcError(-32 /* RPC_METHOD_DEPRECATED */, 'dummy first argument must be excluded or set to "*".');
  return btc(c.balance());
});

def(
  'sendtoaddress',
  ['address', 'amount', 'comment', 'comment_to', 'subtractfeefromamount', 'replaceable', 'conf_target', 'estimate_mode', 'avoid_reuse', 'fee_rate', 'verbose'],
  2,
  '"address" amount ( "comment" "comment_to" subtractfeefromamount replaceable conf_target "estimate_mode" avoid_reuse fee_rate verbose )',
  (p, c) => {
    const address = p.str(0);
    const script = addressScript(address, `Invalid Bitcoin address: ${address}`);
    if (!p.has(1)) throw usage('sendtoaddress');
    const amount = parseBtcAmount(p.values[1]);
    if (amount <= 0n) throw new RpcError(RPC.TYPE_ERROR, 'Invalid amount for send');
    const subtract = p.bool(4, false);
    const replaceable = p.bool(5, true);
    const feeRate = feeRateParam(p, 9);
    const txid = c.send([{ script, value: amount }], { replaceable, subtractFeeFrom: subtract ? [0] : [], ...(feeRate ? { feeRate } : {}) });
    return p.bool(10, false) ? { txid, fee_reason: 'Fallback fee' } : txid;
  },
);

def('devnet_sendoutputs', ['outputs', 'fee_rate'], 1, '[["address", amount], ...] ( fee_rate )  (devnet-only)', (p, c) => {
  const list = p.values[0];
  if (!Array.isArray(list) || list.length === 0) throw new RpcError(RPC.INVALID_PARAMETER, 'outputs must be a non-empty array of [address, amount] pairs');
  const outputs = list.map((pair) => {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string') {
      throw new RpcError(RPC.INVALID_PARAMETER, 'each output must be [address, amount]');
    }
    const value = parseBtcAmount(pair[1]);
    if (value <= 0n) throw new RpcError(RPC.TYPE_ERROR, 'Invalid amount for send');
    return { script: addressScript(pair[0], `Invalid Bitcoin address: ${pair[0]}`), value };
  });
  const feeRate = feeRateParam(p, 1);
  return c.send(outputs, feeRate ? { feeRate } : {});
});

def('devnet_replace', ['txid', 'address', 'fee_rate'], 1, '"txid" ( "address" fee_rate )  (devnet-only)', (p, c) => {
  const txid = p.hash(0);
  const script = p.has(1) ? addressScript(p.str(1), `Invalid Bitcoin address: ${String(p.values[1])}`) : undefined;
  return c.replace(txid, script, feeRateParam(p, 2));
});

def('devnet_setblocktimeoffset', ['seconds'], 1, 'seconds  (devnet-only)', (p, c) => {
  const seconds = p.int(0);
  if (!Number.isSafeInteger(seconds) || Math.abs(seconds) > 10 * 365 * 86_400) throw new RpcError(RPC.INVALID_PARAMETER, 'seconds must be an integer within ten years');
  c.blockTimeOffset = seconds;
  return null;
});

def('devnet_backgroundmempool', ['target', 'rate_per_second'], 1, 'target ( rate_per_second )  (devnet-only)', (p, c) => {
  const target = p.int(0);
  const rate = p.has(1) ? Number(p.values[1]) : 0;
  c.setBackgroundMempool(target, rate);
  return { size: c.background.size, target, rate_per_second: rate };
});

def('getnetworkinfo', [], 0, '', () => ({
  version: CORE_VERSION,
  subversion: CORE_SUBVERSION,
  protocolversion: 70016,
  localservices: '0000000000000c09',
  localservicesnames: ['NETWORK', 'WITNESS', 'NETWORK_LIMITED', 'P2P_V2'],
  localrelay: true,
  timeoffset: 0,
  networkactive: true,
  connections: 0,
  connections_in: 0,
  connections_out: 0,
  networks: [],
  relayfee: btc(1000n),
  incrementalfee: btc(1000n),
  localaddresses: [],
  warnings: [],
}));

def('uptime', [], 0, '', (_p, c) => Math.floor(Date.now() / 1000) - c.startedAt);
def('ping', [], 0, '', () => null);

/** The methods the devnet serves. */
export function devnetRpcMethods(): string[] {
  return [...specs.keys()];
}

/**
 * Runs one JSON-RPC call. Throws `RpcError` (Core code + message) on failure.
 * `params` may be an array (positional) or an object (named), like Core.
 */
export function callDevnetMethod(chain: DevnetChain, method: string, params: unknown): unknown {
  const spec = specs.get(method);
  if (!spec) throw new RpcError(RPC.METHOD_NOT_FOUND, 'Method not found');
  let values: unknown[];
  if (params === undefined || params === null) values = [];
  else if (Array.isArray(params)) values = params;
  else if (typeof params === 'object') {
    values = [];
    for (const [k, v] of Object.entries(params as Record<string, unknown>)) {
      const i = spec.names.indexOf(k);
      if (i < 0) throw new RpcError(RPC.INVALID_PARAMETER, `Unknown named parameter ${k}`);
      values[i] = v;
    }
  } else throw new RpcError(RPC.INVALID_REQUEST, 'Params must be an array or object');
  if (values.length > spec.names.length) throw usage(method);
  for (let i = 0; i < spec.required; i++) if (values[i] === undefined || values[i] === null) throw usage(method);
  const p = new Params(method, values, spec.names);
  return (spec.run as unknown as (p: Params, c: DevnetChain) => unknown)(p, chain);
}
