import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as bitcoin from 'bitcoinjs-lib';
import { startDevnetProcess, type DevnetProcess } from '../support/devnet.ts';
import { BitcoinRpcError } from '../../src/chains/bitcoin/rpc.ts';
import type { BlockHeaderVerbose } from '../../src/chains/bitcoin/types.ts';
import { DevnetChain, type Coin } from '../../src/sandbox/devnet/bitcoin/chain.ts';

const regtest = bitcoin.networks.regtest;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

async function rpcError(p: Promise<unknown>): Promise<BitcoinRpcError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof BitcoinRpcError) return err;
    throw err;
  }
  throw new Error('expected a BitcoinRpcError');
}

let dn: DevnetProcess;

beforeAll(async () => {
  dn = await startDevnetProcess();
});

afterAll(async () => {
  await dn?.stop();
});

describe('bitcoin devnet: chain and wallet', () => {
  it('starts on Core regtest genesis with 101 premined blocks and 50 BTC mature balance', async () => {
    expect(await dn.rpc.getBlockHash(0)).toBe('0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206');
    const info = await dn.rpc.getBlockchainInfo();
    expect(info.chain).toBe('regtest');
    expect(info.blocks).toBe(101);
    expect(info.bestblockhash).toBe(await dn.rpc.getBestBlockHash());
    expect(await dn.rpc.getBlockCount()).toBe(101);
    expect(await dn.wallet.getBalance()).toBe(50);
  });

  it('sendtoaddress pays with a real P2WPKH transaction that is mined in a valid block', async () => {
    const address = await dn.wallet.getNewAddress();
    expect(address).toMatch(/^bcrt1q/);
    const txid = await dn.wallet.sendToAddress(address, 0.1);
    expect(await dn.rpc.getRawMempool()).toContain(txid);

    const tx = bitcoin.Transaction.fromBuffer(await dn.rpc.getRawTransactionRaw(txid));
    expect(tx.getId()).toBe(txid);
    expect(tx.hasWitnesses()).toBe(true);
    const script = bitcoin.address.toOutputScript(address, regtest);
    expect(tx.outs.filter((o) => hex(o.script) === hex(script)).map((o) => o.value)).toEqual([10_000_000n]);

    const [blockHash] = await dn.wallet.mine(1);
    const height = await dn.rpc.getBlockCount();
    const raw = await dn.rpc.getBlockRaw(blockHash!);
    const block = bitcoin.Block.fromBuffer(raw);
    expect(block.getId()).toBe(blockHash);
    expect(block.checkTxRoots()).toBe(true); // merkle root and BIP141 witness commitment
    expect(block.hasWitnessCommit()).toBe(true);
    expect(hex(block.merkleRoot!)).toBe(hex(bitcoin.Block.calculateMerkleRoot(block.transactions!)));
    expect(block.checkProofOfWork()).toBe(true);
    const coinbase = block.transactions![0]!;
    expect(coinbase.isCoinbase()).toBe(true);
    const bip34 = bitcoin.script.decompile(coinbase.ins[0]!.script)![0]!;
    expect(bitcoin.script.number.decode(bip34 as Uint8Array)).toBe(height);
    expect(block.transactions!.map((t) => t.getId())).toContain(txid);
    expect(await dn.rpc.getRawMempool()).not.toContain(txid);

    const verbose = await dn.rpc.call<Record<string, unknown>>('getrawtransaction', [txid, true]);
    expect(verbose).toMatchObject({ txid, blockhash: blockHash, confirmations: 1 });
    // Esplora serves the same bytes.
    expect(hex(await dn.esplora.getBlockRaw(blockHash!))).toBe(hex(raw));
    expect(await dn.esplora.getTxStatus(txid)).toMatchObject({ confirmed: true, block_hash: blockHash, block_height: height });
  });

  it('generatetoaddress extends the chain and blocks link by prevhash with increasing times', async () => {
    const before = await dn.rpc.getBlockCount();
    const tipBefore = await dn.rpc.getBestBlockHash();
    const hashes = await dn.wallet.mine(3);
    expect(await dn.rpc.getBlockCount()).toBe(before + 3);
    let prev = tipBefore;
    let prevTime = (await dn.rpc.getBlockHeader(tipBefore)).time;
    for (const [i, h] of hashes.entries()) {
      const header = await dn.rpc.getBlockHeader(h);
      expect(header.height).toBe(before + 1 + i);
      expect(header.previousBlockHash).toBe(prev);
      expect(header.time).toBeGreaterThan(prevTime);
      const block = bitcoin.Block.fromBuffer(await dn.rpc.getBlockRaw(h));
      expect(Buffer.from(block.prevHash!).reverse().toString('hex')).toBe(prev);
      expect(await dn.rpc.getBlockHash(before + 1 + i)).toBe(h);
      const rawHeader = await dn.rpc.getBlockHeaderRaw(h);
      expect(hex(rawHeader)).toBe(hex(block.toBuffer(true)));
      prev = h;
      prevTime = header.time;
    }
    const verbose = await dn.rpc.getBlockHeaderVerbose(hashes[0]!);
    expect(verbose.nextblockhash).toBe(hashes[1]);
    expect(verbose.confirmations).toBe(3);
  });

  it('invalidateblock and a longer branch make a real reorg; the orphan still answers with confirmations -1', async () => {
    const address = await dn.wallet.getNewAddress();
    const txid = await dn.wallet.sendToAddress(address, '0.25');
    const [orphan] = await dn.wallet.mine(1);
    const orphanHeader = await dn.rpc.getBlockHeaderVerbose(orphan!);

    await dn.wallet.invalidateBlock(orphan!);
    expect(await dn.rpc.getBestBlockHash()).toBe(orphanHeader.previousblockhash);
    expect(await dn.rpc.getRawMempool()).toContain(txid); // back in the mempool, like Core

    const branch = await dn.wallet.mine(2);
    expect(await dn.rpc.getBestBlockHash()).toBe(branch[1]);
    expect(await dn.rpc.getBlockCount()).toBe(orphanHeader.height + 1);
    expect(await dn.rpc.getBlockHash(orphanHeader.height)).toBe(branch[0]);
    expect(branch[0]).not.toBe(orphan);

    const gone = await dn.rpc.call<Record<string, unknown>>('getblock', [orphan, 1]);
    expect(gone.confirmations).toBe(-1);
    expect(gone.nextblockhash).toBeUndefined();
    expect((await dn.rpc.getBlockHeader(orphan!)).confirmations).toBe(-1);
    const tips = await dn.rpc.call<{ hash: string; status: string }[]>('getchaintips');
    expect(tips.find((t) => t.hash === orphan)?.status).toBe('invalid');
    // the payment is re-mined on the new branch
    const tx = await dn.rpc.call<{ blockhash: string }>('getrawtransaction', [txid, 1]);
    expect(tx.blockhash).toBe(branch[0]);
  });

  it('a payment double-spent during a reorg disappears (devnet_replace re-spends its inputs)', async () => {
    const payee = await dn.wallet.getNewAddress();
    const txid = await dn.wallet.sendToAddress(payee, 1);
    const [blockA] = await dn.wallet.mine(1);
    await dn.wallet.invalidateBlock(blockA!);
    expect(await dn.rpc.getRawMempool()).toContain(txid);
    const replacement = await dn.wallet.replace(txid);
    const mempool = await dn.rpc.getRawMempool();
    expect(mempool).toContain(replacement);
    expect(mempool).not.toContain(txid);
    await dn.wallet.mine(2);
    const err = await rpcError(dn.rpc.getRawTransactionRaw(txid));
    expect(err.rpcCode).toBe(-5);
    const replaced = bitcoin.Transaction.fromBuffer(await dn.rpc.getRawTransactionRaw(replacement));
    const payeeScript = hex(bitcoin.address.toOutputScript(payee, regtest));
    expect(replaced.outs.some((o) => hex(o.script) === payeeScript)).toBe(false);
  });

  it('devnet_sendoutputs pays the same address twice in one transaction', async () => {
    const address = await dn.wallet.getNewAddress();
    const txid = await dn.wallet.sendOutputs([
      [address, '0.1'],
      [address, 0.2],
    ]);
    const tx = bitcoin.Transaction.fromBuffer(await dn.rpc.getRawTransactionRaw(txid));
    const script = hex(bitcoin.address.toOutputScript(address, regtest));
    expect(tx.outs.filter((o) => hex(o.script) === script).map((o) => o.value)).toEqual([10_000_000n, 20_000_000n]);
  });

  it('getrawmempool verbose reports fee, vsize and BIP125 replaceability', async () => {
    const txid = await dn.wallet.sendToAddress(await dn.wallet.getNewAddress(), 0.01);
    const pool = await dn.rpc.call<Record<string, { vsize: number; fees: { base: number }; 'bip125-replaceable': boolean }>>('getrawmempool', [true]);
    expect(pool[txid]!.vsize).toBeGreaterThan(100);
    expect(pool[txid]!.fees.base).toBeGreaterThan(0);
    expect(pool[txid]!['bip125-replaceable']).toBe(true);
  });
});

describe('bitcoin devnet: background mempool (devnet_backgroundmempool)', () => {
  afterEach(async () => {
    await dn.rpc.call('devnet_backgroundmempool', [0, 0]);
  });

  it('fills the mempool with well-formed transactions that are listed and served but never mined', async () => {
    const before = await dn.rpc.call<string[]>('getrawmempool');
    const r = await dn.rpc.call<{ size: number }>('devnet_backgroundmempool', [2_000]);
    expect(r.size).toBe(2_000);
    const listed = await dn.rpc.call<string[]>('getrawmempool');
    expect(listed).toHaveLength(before.length + 2_000);
    expect((await dn.rpc.call<{ size: number }>('getmempoolinfo')).size).toBe(listed.length);
    const bg = listed.filter((t) => !before.includes(t));
    for (const txid of [bg[0]!, bg[1_999]!]) {
      const raw = await dn.rpc.getRawTransactionRaw(txid);
      const tx = bitcoin.Transaction.fromBuffer(Buffer.from(raw));
      expect(tx.getId()).toBe(txid); // txid = hash256 of the serialization without witness
      expect(raw.length).toBe(223);
      expect(tx.ins).toHaveLength(1);
      expect(tx.outs.map((o) => o.script.length)).toEqual([22, 22]);
      expect(Buffer.from(await dn.esplora.getRawTransactionRaw(txid))).toEqual(Buffer.from(raw));
    }
    expect(await dn.esplora.getRawMempool()).toHaveLength(listed.length);
    // Mining takes the ordinary mempool only; the background stays at its target.
    const [hash] = await dn.wallet.mine(1);
    const block = bitcoin.Block.fromHex(await dn.rpc.call<string>('getblock', [hash, 0]));
    expect(block.transactions!.map((t) => t.getId()).some((t) => bg.includes(t))).toBe(false);
    expect(await dn.rpc.call<string[]>('getrawmempool')).toHaveLength(2_000);
  });

  it('adds rate_per_second new transactions per second; a block trims the oldest back to the target', async () => {
    await dn.rpc.call('devnet_backgroundmempool', [500, 20]);
    const first = await dn.rpc.call<string[]>('getrawmempool');
    await new Promise((r) => setTimeout(r, 1_100));
    const later = await dn.rpc.call<string[]>('getrawmempool');
    const added = later.filter((t) => !first.includes(t));
    expect(added.length).toBeGreaterThanOrEqual(15);
    expect(added.length).toBeLessThanOrEqual(40);
    await dn.rpc.call('devnet_backgroundmempool', [500, 0]); // stop arrivals; trims to 500 now
    const trimmed = await dn.rpc.call<string[]>('getrawmempool');
    expect(trimmed).toHaveLength(500);
    // The newest stay, the oldest left. Arrivals go on until the stop call, so more may have come
    // after `later`: every arrival is kept, in order, at the end, starting with those seen above.
    const arrived = trimmed.filter((t) => !first.includes(t));
    expect(arrived.slice(0, added.length)).toEqual(added);
    expect(trimmed.slice(-arrived.length)).toEqual(arrived);
    expect(trimmed).not.toContain(first[0]);
  });
});

describe('bitcoin devnet: sendrawtransaction validation (Core error codes)', () => {
  it('accepts a re-broadcast of a mempool tx, rejects a mined one with -27 and a spent input with -25', async () => {
    const txid = await dn.wallet.sendToAddress(await dn.wallet.getNewAddress(), 0.3);
    const txHex = hex(await dn.rpc.getRawTransactionRaw(txid));
    expect(await dn.rpc.sendRawTransaction(txHex)).toBe(txid);
    expect(await dn.esplora.sendRawTransaction(txHex)).toBe(txid);
    await dn.wallet.mine(1);
    expect((await rpcError(dn.rpc.sendRawTransaction(txHex))).rpcCode).toBe(-27);
    expect((await rpcError(dn.esplora.sendRawTransaction(txHex))).rpcCode).toBe(-27);
    const tx = bitcoin.Transaction.fromHex(txHex);
    tx.outs[0]!.value -= 1000n; // same (now spent) inputs, different tx
    const err = await rpcError(dn.rpc.sendRawTransaction(tx.toHex()));
    expect(err.rpcCode).toBe(-25);
    expect(err.rpcMessage).toBe('bad-txns-inputs-missingorspent');
  });

  it('rejects garbage (-22), overspending (-26) and a tampered signature (-26)', async () => {
    expect((await rpcError(dn.rpc.sendRawTransaction('zz'))).rpcCode).toBe(-22);
    const txid = await dn.wallet.sendToAddress(await dn.wallet.getNewAddress(), 0.4);
    const tx = bitcoin.Transaction.fromBuffer(await dn.rpc.getRawTransactionRaw(txid));
    const over = tx.clone();
    over.outs[0]!.value += 100n * 100_000_000n;
    const e1 = await rpcError(dn.rpc.sendRawTransaction(over.toHex()));
    expect(e1.rpcCode).toBe(-26);
    expect(e1.rpcMessage).toMatch(/^bad-txns-in-belowout/);
    const tampered = tx.clone();
    tampered.outs[0]!.value -= 5000n; // higher fee, but the signature no longer matches
    const e2 = await rpcError(dn.rpc.sendRawTransaction(tampered.toHex()));
    expect(e2.rpcCode).toBe(-26);
    expect(e2.rpcMessage).toMatch(/^mandatory-script-verify-flag-failed/);
  });

  it('refuses to replace a non-signalling mempool tx (-26 txn-mempool-conflict)', async () => {
    const txid = await dn.rpc.call<string>('sendtoaddress', { address: await dn.wallet.getNewAddress(), amount: 0.2, replaceable: false });
    const err = await rpcError(dn.wallet.replace(txid));
    expect(err.rpcCode).toBe(-26);
    expect(err.rpcMessage).toBe('txn-mempool-conflict');
  });
});

describe('bitcoin devnet: RPC errors like bitcoind', () => {
  it('answers unknown blocks/txs with -5, bad params with -8/-3, unknown methods with -32601', async () => {
    const unknown = '00'.repeat(32);
    expect(await rpcError(dn.rpc.getBlockRaw(unknown))).toMatchObject({ rpcCode: -5, rpcMessage: 'Block not found' });
    expect(await rpcError(dn.rpc.getBlockHeader(unknown))).toMatchObject({ rpcCode: -5 });
    expect(await rpcError(dn.rpc.getRawTransactionRaw(unknown))).toMatchObject({ rpcCode: -5 });
    expect(await rpcError(dn.rpc.getBlockHash(1_000_000))).toMatchObject({ rpcCode: -8, rpcMessage: 'Block height out of range' });
    expect(await rpcError(dn.rpc.call('getblock', ['abc']))).toMatchObject({
      rpcCode: -8,
      rpcMessage: "blockhash must be of length 64 (not 3, for 'abc')",
    });
    expect(await rpcError(dn.rpc.call('getblockhash', ['x']))).toMatchObject({ rpcCode: -3 });
    expect(await rpcError(dn.rpc.call('getblockhash', []))).toMatchObject({ rpcCode: -1 });
    expect(await rpcError(dn.rpc.call('generatetoaddress', [1, 'not-an-address']))).toMatchObject({ rpcCode: -5 });
    const notFound = await rpcError(dn.rpc.call('nosuchmethod'));
    expect(notFound.rpcCode).toBe(-32601);
    expect(notFound.message).toContain('devnet');
    expect(notFound.message).toContain('nosuchmethod');
  });

  it('replies like bitcoind on the wire: HTTP 500/404 with a JSON-RPC 1.0 body, 401 on bad auth', async () => {
    const auth = `Basic ${Buffer.from(`${dn.rpcUser}:${dn.rpcPassword}`).toString('base64')}`;
    const post = (body: string, authorization = auth): Promise<Response> =>
      fetch(dn.rpcUrl, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body });
    const nf = await post('{"jsonrpc":"1.0","id":"x","method":"nosuch","params":[]}');
    expect(nf.status).toBe(404);
    expect(await nf.json()).toEqual({ result: null, error: { code: -32601, message: 'Method not found' }, id: 'x' });
    const bad = await post('{"id":1,"method":"getblockhash","params":[-1]}');
    expect(bad.status).toBe(500);
    expect((await bad.json()).error.code).toBe(-8);
    const unauthorized = await post('{"id":1,"method":"getblockcount"}', `Basic ${Buffer.from('kassa:wrong').toString('base64')}`);
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('www-authenticate')).toBe('Basic realm="jsonrpc"');
    const none = await fetch(dn.rpcUrl, { method: 'POST', body: '{}' });
    expect(none.status).toBe(401);
  });

  it('the RPC client reports bad credentials as a non-retryable upstream error', async () => {
    const { createBitcoinRpcClient } = await import('../../src/chains/bitcoin/rpc.ts');
    const client = createBitcoinRpcClient({ url: dn.rpcUrl, user: 'kassa', password: 'wrong', name: 'devnet' });
    await expect(client.getBlockCount()).rejects.toMatchObject({ code: 'bitcoin_node_unauthorized', retryable: false });
  });

  it('serves JSON-RPC batches in one request', async () => {
    const results = await dn.rpc.batch([
      { method: 'getblockcount' },
      { method: 'getbestblockhash' },
      { method: 'getblock', params: ['11'.repeat(32), 0] },
      { method: 'getblockhash', params: [0] },
    ]);
    expect(results[0]).toEqual({ ok: true, result: await dn.rpc.getBlockCount() });
    expect(results[1]).toEqual({ ok: true, result: await dn.rpc.getBestBlockHash() });
    expect(results[2]!.ok).toBe(false);
    if (!results[2]!.ok) expect(results[2]!.error.rpcCode).toBe(-5);
    expect(results[3]).toEqual({ ok: true, result: '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206' });
  });
});

describe('bitcoin devnet: Esplora routes', () => {
  it('serves the same chain as the RPC interface', async () => {
    const height = await dn.rpc.getBlockCount();
    expect(await dn.esplora.getBlockCount()).toBe(height);
    const tip = await dn.rpc.getBestBlockHash();
    expect(await dn.esplora.getBestBlockHash()).toBe(tip);
    expect(await dn.esplora.getBlockHash(height)).toBe(tip);
    const header = await dn.esplora.getBlockHeader(tip);
    const rpcHeader: BlockHeaderVerbose = await dn.rpc.getBlockHeaderVerbose(tip);
    expect(header).toMatchObject({ hash: tip, height, previousBlockHash: rpcHeader.previousblockhash, merkleRoot: rpcHeader.merkleroot, time: rpcHeader.time });
    expect(hex(await dn.esplora.getBlockHeaderRaw(tip))).toBe(hex(await dn.rpc.getBlockHeaderRaw(tip)));
    const txid = await dn.wallet.sendToAddress(await dn.wallet.getNewAddress(), 0.05);
    expect(await dn.esplora.getRawMempool()).toContain(txid);
    expect(hex(await dn.esplora.getRawTransactionRaw(txid))).toBe(hex(await dn.rpc.getRawTransactionRaw(txid)));
    expect(await dn.esplora.getTxStatus(txid)).toEqual({ confirmed: false });
  });

  it('maps Esplora 404s to Core-like -5/-8 errors', async () => {
    expect(await rpcError(dn.esplora.getBlockRaw('22'.repeat(32)))).toMatchObject({ rpcCode: -5 });
    expect(await rpcError(dn.esplora.getBlockHash(9_999_999))).toMatchObject({ rpcCode: -8 });
    expect(await rpcError(dn.esplora.getRawTransactionRaw('33'.repeat(32)))).toMatchObject({ rpcCode: -5 });
    const res = await fetch(`${dn.esploraUrl}/block/${'22'.repeat(32)}`);
    expect(res.status).toBe(404);
  });
});

describe('bitcoin devnet: script verification of foreign inputs', () => {
  it('accepts a correctly signed P2TR key-path spend and rejects a forged signature', async () => {
    const ecc = await import('@bitcoinerlab/secp256k1');
    const { ECPairFactory } = await import('ecpair');
    bitcoin.initEccLib(ecc);
    const ECPair = ECPairFactory(ecc);
    const key = ECPair.fromPrivateKey(new Uint8Array(32).fill(7), { network: regtest });
    const other = ECPair.fromPrivateKey(new Uint8Array(32).fill(9), { network: regtest });
    const internal = key.publicKey.subarray(1, 33);
    const p2tr = bitcoin.payments.p2tr({ internalPubkey: internal, network: regtest });
    const fundTxid = await dn.wallet.sendToAddress(p2tr.address!, 0.5);
    await dn.wallet.mine(1);
    const fund = bitcoin.Transaction.fromBuffer(await dn.rpc.getRawTransactionRaw(fundTxid));
    const vout = fund.outs.findIndex((o) => hex(o.script) === hex(p2tr.output!));

    const spend = (signer: typeof key): string => {
      const psbt = new bitcoin.Psbt({ network: regtest });
      psbt.addInput({ hash: fundTxid, index: vout, witnessUtxo: { script: p2tr.output!, value: 50_000_000n }, tapInternalKey: internal });
      psbt.addOutput({ address: bitcoin.payments.p2tr({ internalPubkey: internal, network: regtest }).address!, value: 49_990_000n });
      const tweaked = signer.tweak(bitcoin.crypto.taggedHash('TapTweak', signer.publicKey.subarray(1, 33)));
      psbt.signInput(0, tweaked);
      psbt.finalizeAllInputs();
      return psbt.extractTransaction().toHex();
    };
    const valid = bitcoin.Transaction.fromHex(spend(key));
    const forged = valid.clone();
    forged.ins[0]!.witness = [new Uint8Array(64).fill(1)]; // not a valid Schnorr signature for this sighash
    const e = await rpcError(dn.rpc.sendRawTransaction(forged.toHex()));
    expect(e.rpcCode).toBe(-26);
    expect(e.rpcMessage).toMatch(/^mandatory-script-verify-flag-failed/);
    expect(() => spend(other)).toThrow(); // PSBT refuses a signer whose key does not match the output
    expect(await dn.rpc.sendRawTransaction(valid.toHex())).toBe(valid.getId());
  });
});

describe('bitcoin devnet: disconnected blocks restore the UTXO set and the mempool like Core', () => {
  // A fresh devnet per test (and per retry) with 101 premined blocks: exactly one mature coinbase,
  // so the wallet's second send has to spend the first one's change.
  let fresh: DevnetProcess;
  let ecc: typeof import('@bitcoinerlab/secp256k1');
  let key: { publicKey: Uint8Array; sign(hash: Uint8Array): Uint8Array };
  let keyScript: Uint8Array;
  let keyAddress: string;

  beforeEach(async () => {
    fresh = await startDevnetProcess();
  });

  afterEach(async () => {
    await fresh?.stop();
  });

  beforeAll(async () => {
    ecc = await import('@bitcoinerlab/secp256k1');
    const { ECPairFactory } = await import('ecpair');
    const pair = ECPairFactory(ecc).fromPrivateKey(new Uint8Array(32).fill(11), { network: regtest });
    key = pair;
    const p2wpkh = bitcoin.payments.p2wpkh({ pubkey: pair.publicKey, network: regtest });
    keyScript = p2wpkh.output!;
    keyAddress = p2wpkh.address!;
  });

  const op = (txid: string, vout: number): string => `${txid}:${vout}`;
  const inputsOf = (tx: bitcoin.Transaction): string[] => tx.ins.map((i) => op(Buffer.from(i.hash).reverse().toString('hex'), i.index));
  const outputsOf = (tx: bitcoin.Transaction): string[] => tx.outs.map((_o, vout) => op(tx.getId(), vout));
  const getTx = async (txid: string): Promise<bitcoin.Transaction> => bitcoin.Transaction.fromBuffer(await fresh.rpc.getRawTransactionRaw(txid));
  const blockTxids = async (hash: string): Promise<string[]> =>
    bitcoin.Block.fromBuffer(await fresh.rpc.getBlockRaw(hash)).transactions!.map((t) => t.getId());
  /** `gettxout` of each outpoint: the chain's UTXO set only (default) or with the mempool's view. */
  const utxoView = async (outpoints: string[], includeMempool = false): Promise<Record<string, unknown>> => {
    const view: Record<string, unknown> = {};
    for (const o of outpoints) {
      const [txid, n] = o.split(':');
      view[o] = await fresh.rpc.call('gettxout', [txid, Number(n), includeMempool]);
    }
    return view;
  };
  const sortedMempool = async (): Promise<string[]> => (await fresh.rpc.getRawMempool()).slice().sort();
  /** A P2WPKH spend of `txid:vout` (paying `keyScript`) by the test key, to `keyScript`, fee 1000 sat. */
  const spendKeyOutput = (txid: string, vout: number, value: bigint): bitcoin.Transaction => {
    const psbt = new bitcoin.Psbt({ network: regtest });
    psbt.addInput({ hash: txid, index: vout, witnessUtxo: { script: keyScript, value } });
    psbt.addOutput({ script: keyScript, value: value - 1000n });
    psbt.signInput(0, { publicKey: key.publicKey, sign: (h: Uint8Array) => key.sign(h) });
    psbt.finalizeAllInputs();
    return psbt.extractTransaction();
  };

  it('a wallet tx and the child spending its change, mined in one block, both return to the mempool after invalidateblock and are re-mined', async () => {
    const tip0 = await fresh.rpc.getBestBlockHash();
    const a = await fresh.wallet.sendToAddress(keyAddress, 1);
    const b = await fresh.wallet.sendToAddress(keyAddress, 2);
    const txA = await getTx(a);
    const txB = await getTx(b);
    const aChange = txA.outs.length - 1; // the wallet puts change last
    expect(inputsOf(txB)).toEqual([op(a, aChange)]); // B spends A's change
    const watched = [...inputsOf(txA), ...outputsOf(txA), ...outputsOf(txB)];
    const chainBefore = await utxoView(watched);
    const withMempoolBefore = await utxoView(watched, true);
    expect(chainBefore[inputsOf(txA)[0]!]).not.toBeNull();
    expect(chainBefore[op(a, aChange)]).toBeNull();
    const balanceBefore = await fresh.wallet.getBalance();

    const [mined] = await fresh.wallet.mine(1);
    const minedTxids = await blockTxids(mined!);
    expect(minedTxids.slice(1)).toEqual([a, b]);
    expect(await fresh.rpc.getRawMempool()).toEqual([]);

    await fresh.wallet.invalidateBlock(mined!);
    expect(await fresh.rpc.getBestBlockHash()).toBe(tip0);
    expect(await sortedMempool()).toEqual([a, b].sort()); // Core re-adds both, parent first
    expect((await fresh.rpc.call<{ depends: string[] }>('getmempoolentry', [b])).depends).toEqual([a]);
    // The UTXO set is exactly what it was before the block, on its own and with the mempool.
    expect(await utxoView(watched)).toEqual(chainBefore);
    expect(await utxoView(watched, true)).toEqual(withMempoolBefore);
    expect(await fresh.rpc.call('gettxout', [minedTxids[0], 0, false])).toBeNull(); // its coinbase is gone
    expect(await fresh.wallet.getBalance()).toBe(balanceBefore);

    const [again] = await fresh.wallet.mine(1);
    expect((await blockTxids(again!)).slice(1)).toEqual([a, b]);
    expect(await fresh.rpc.getRawMempool()).toEqual([]);
    for (const txid of [a, b]) {
      expect((await fresh.rpc.call<{ blockhash: string }>('getrawtransaction', [txid, 1])).blockhash).toBe(again);
    }
    expect(await fresh.rpc.call('gettxout', [a, aChange, false])).toBeNull(); // spent by B
    expect(await fresh.rpc.call('gettxout', [b, 0, false])).toMatchObject({ confirmations: 1 });
  });

  it('invalidating two blocks, spender first: an output created in the earlier block and spent in the later one is restored, then removed', async () => {
    const tip0 = await fresh.rpc.getBestBlockHash();
    // block 1: F (wallet → test key) and X (spends F's output); block 2: Z (spends X:0) and W (spends Z:0).
    const f = await fresh.wallet.sendToAddress(keyAddress, 1);
    const txF = await getTx(f);
    const fv = txF.outs.findIndex((o) => hex(o.script) === hex(keyScript));
    const txX = spendKeyOutput(f, fv, 100_000_000n);
    const x = await fresh.rpc.sendRawTransaction(txX.toHex());
    const watched0 = [...inputsOf(txF), ...outputsOf(txF), ...outputsOf(txX)];
    const chainAtTip0 = await utxoView(watched0);
    const [block1] = await fresh.wallet.mine(1);
    expect((await blockTxids(block1!)).slice(1)).toEqual([f, x]);

    const txZ = spendKeyOutput(x, 0, txX.outs[0]!.value);
    const z = await fresh.rpc.sendRawTransaction(txZ.toHex());
    const txW = spendKeyOutput(z, 0, txZ.outs[0]!.value);
    const w = await fresh.rpc.sendRawTransaction(txW.toHex());
    const watched1 = [...watched0, ...outputsOf(txZ), ...outputsOf(txW)];
    const chainAtBlock1 = await utxoView(watched1);
    expect(chainAtBlock1[op(x, 0)]).toMatchObject({ confirmations: 1 });
    const [block2] = await fresh.wallet.mine(1);
    expect((await blockTxids(block2!)).slice(1)).toEqual([z, w]);
    expect(await fresh.rpc.call('gettxout', [x, 0, false])).toBeNull();

    // Spending block first: X:0 (created in block 1) comes back, Z:0 (created and spent in block 2) does not.
    await fresh.wallet.invalidateBlock(block2!);
    expect(await fresh.rpc.getBestBlockHash()).toBe(block1);
    expect(await utxoView(watched1)).toEqual(chainAtBlock1);
    expect(await sortedMempool()).toEqual([z, w].sort());

    // Then the creating block: X:0 is gone again, F's wallet inputs are back.
    await fresh.wallet.invalidateBlock(block1!);
    expect(await fresh.rpc.getBestBlockHash()).toBe(tip0);
    expect(await utxoView(watched0)).toEqual(chainAtTip0);
    for (const o of [...outputsOf(txZ), ...outputsOf(txW)]) expect((await utxoView([o]))[o]).toBeNull();
    expect(await sortedMempool()).toEqual([f, x, z, w].sort());

    const [branch] = await fresh.wallet.mine(1);
    expect((await blockTxids(branch!)).slice(1)).toEqual([f, x, z, w]); // parents before children
    expect(await fresh.rpc.getRawMempool()).toEqual([]);
    expect(await fresh.rpc.call('gettxout', [w, 0, false])).toMatchObject({ confirmations: 1 });

    // Back to the longer original chain: the branch block (all four txs spent within it) disconnects cleanly.
    await fresh.wallet.reconsiderBlock(block1!);
    expect(await fresh.rpc.getBestBlockHash()).toBe(block2);
    expect(await fresh.rpc.getRawMempool()).toEqual([]);
    expect((await fresh.rpc.call<{ blockhash: string }>('getrawtransaction', [w, 1])).blockhash).toBe(block2);
    expect(await fresh.rpc.call('gettxout', [x, 0, false])).toBeNull();
    expect(await fresh.rpc.call('gettxout', [w, 0, false])).toMatchObject({ confirmations: 1 });
  });
});

describe('bitcoin devnet chain (in process): undo data', () => {
  /** The UTXO set rebuilt from scratch from the active chain's blocks. */
  function replayUtxo(chain: DevnetChain): Map<string, Coin> {
    const utxo = new Map<string, Coin>();
    for (const entry of chain.active.slice(1)) {
      entry.txs.forEach((tx, ti) => {
        if (ti > 0) for (const i of tx.ins) utxo.delete(`${Buffer.from(i.hash).reverse().toString('hex')}:${i.index}`);
        const txid = entry.txids[ti]!;
        tx.outs.forEach((o, vout) => {
          if (o.script[0] === bitcoin.opcodes.OP_RETURN) return;
          utxo.set(`${txid}:${vout}`, { txid, vout, value: o.value, script: o.script, height: entry.height, coinbase: ti === 0 });
        });
      });
    }
    return utxo;
  }
  const sorted = (m: Map<string, Coin>): [string, Coin][] => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1));

  it('disconnecting blocks with in-block spends restores the UTXO set exactly, block by block', () => {
    const chain = new DevnetChain();
    chain.mine(101, chain.wallet.newKey().script); // one mature coinbase
    const external = bitcoin.payments.p2wpkh({ hash: new Uint8Array(20).fill(3), network: regtest }).output!;
    const pay = (btc: bigint): string => chain.send([{ script: external, value: btc * 100_000_000n }]);
    const s0 = sorted(chain.utxo);
    const a = pay(1n);
    const b = pay(2n); // spends a's change
    expect(chain.mempool.get(b)!.tx.ins.map((i) => Buffer.from(i.hash).reverse().toString('hex'))).toEqual([a]);
    const [h1] = chain.mine(1, external);
    const s1 = sorted(chain.utxo);
    const c = pay(60n); // coinbase #2 (now mature) + b's change, created in block h1
    const d = pay(1n); // spends c's change
    expect(chain.mempool.get(c)!.tx.ins.map((i) => Buffer.from(i.hash).reverse().toString('hex'))).toContain(b);
    const [h2] = chain.mine(1, external);
    expect(sorted(chain.utxo)).toEqual(sorted(replayUtxo(chain)));

    chain.invalidateBlock(h2!);
    expect(sorted(chain.utxo)).toEqual(s1);
    expect([...chain.mempool.keys()]).toEqual([c, d]);
    chain.invalidateBlock(h1!);
    expect(sorted(chain.utxo)).toEqual(s0);
    expect([...chain.mempool.keys()]).toEqual([a, b, c, d]);

    const [h3] = chain.mine(1, external);
    expect(chain.blocks.get(h3!)!.txids.slice(1)).toEqual([a, b, c, d]);
    expect(sorted(chain.utxo)).toEqual(sorted(replayUtxo(chain)));
    chain.reconsiderBlock(h1!); // the original two blocks win again
    expect(chain.tip().hash).toBe(h2);
    expect(chain.mempool.size).toBe(0);
    expect(sorted(chain.utxo)).toEqual(sorted(replayUtxo(chain)));
  });
});
