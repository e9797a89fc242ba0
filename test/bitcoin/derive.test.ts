import { describe, expect, it } from 'vitest';
import * as bitcoin from 'bitcoinjs-lib';
import { pbkdf2 } from '@noble/hashes/pbkdf2';
import { sha512 } from '@noble/hashes/sha2';
import { KassaError } from '../../src/errors.ts';
import { bip32 } from '../../src/chains/bitcoin/ecc.ts';
import { base58CheckDecode, base58CheckEncode } from '../../src/chains/bitcoin/base58.ts';
import { bitcoinNetwork } from '../../src/chains/bitcoin/networks.ts';
import {
  addDescriptorChecksum,
  descriptorChecksum,
  parseBitcoinKeySource,
  verifyDescriptorChecksum,
  type BitcoinKeySource,
} from '../../src/chains/bitcoin/descriptor.ts';
import { deriveAddress, deriveAddresses } from '../../src/chains/bitcoin/derive.ts';

// BIP-84 / BIP-86 / BIP-49 test vectors: mnemonic "abandon ×11 about", no passphrase.
const MNEMONIC = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
const SEED = pbkdf2(sha512, MNEMONIC, 'mnemonic', { c: 2048, dkLen: 64 });
const ROOT_MAIN = bip32().fromSeed(SEED, bitcoinNetwork('mainnet'));
const ROOT_TEST = bip32().fromSeed(SEED, bitcoinNetwork('testnet'));

const BIP84_ZPUB = 'zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs';
const BIP84_XPUB = 'xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V';
const BIP86_XPUB = 'xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ';
const BIP49_UPUB = 'upub5EFU65HtV5TeiSHmZZm7FUffBGy8UKeqp7vw43jYbvZPpoVsgU93oac7Wk3u6moKegAEWtGNF8DehrnHtv21XXEMYRUocHqguyjknFHYfgY';

function withVersion(key: string, version: number): string {
  const d = base58CheckDecode(key);
  if (!d.ok) throw new Error('bad test key');
  const p = new Uint8Array(d.payload);
  new DataView(p.buffer).setUint32(0, version);
  return base58CheckEncode(p);
}

function expectKassaError(fn: () => unknown, code: string, param: string, message?: RegExp): KassaError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KassaError);
    const e = err as KassaError;
    expect({ code: e.code, status: e.status, param: e.param }).toEqual({ code, status: 400, param });
    if (message) expect(e.message).toMatch(message);
    return e;
  }
  throw new Error(`expected a ${code} error`);
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('BIP-380 descriptor checksum', () => {
  it('matches the BIP-380 test vector raw(deadbeef)#89f8spxm', () => {
    expect(descriptorChecksum('raw(deadbeef)')).toBe('89f8spxm');
    expect(addDescriptorChecksum('raw(deadbeef)')).toBe('raw(deadbeef)#89f8spxm');
    expect(verifyDescriptorChecksum('raw(deadbeef)#89f8spxm')).toBe(true);
    expect(verifyDescriptorChecksum('raw(deedbeef)#89f8spxm')).toBe(false);
    expect(verifyDescriptorChecksum('raw(deadbeef)#99f8spxm')).toBe(false);
  });

  it('matches checksums published for the BIP-84 account descriptors', () => {
    expect(descriptorChecksum(`wpkh([73c5da0a/84'/0'/0']${BIP84_XPUB}/0/*)`)).toBe('wc3n3van');
    expect(descriptorChecksum(`wpkh([73c5da0a/84'/0'/0']${BIP84_XPUB}/<0;1>/*)`)).toBe('hpg6d6w2');
  });

  it('returns null for characters outside the descriptor charset', () => {
    expect(descriptorChecksum('raw(Ü)')).toBeNull();
  });
});

describe('parseBitcoinKeySource + deriveAddress: BIP-84 (P2WPKH) vectors', () => {
  it('a zpub implies p2wpkh and is normalised to the standard xpub', () => {
    const s = parseBitcoinKeySource({ xpub: BIP84_ZPUB }, 'mainnet');
    expect(s).toMatchObject({ network: 'mainnet', address_type: 'p2wpkh', xpub: BIP84_XPUB, origin: null });
    expect(verifyDescriptorChecksum(s.descriptor)).toBe(true);
    expect(s.descriptor.startsWith(`wpkh(${BIP84_XPUB}/0/*)#`)).toBe(true);
  });

  it('derives the BIP-84 first receive addresses', () => {
    const s = parseBitcoinKeySource({ xpub: BIP84_ZPUB }, 'mainnet');
    const a0 = deriveAddress(s, 0);
    expect(a0.address).toBe('bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu');
    expect(a0.index).toBe(0);
    expect(hex(a0.scriptPubKey)).toBe(hex(bitcoin.address.toOutputScript(a0.address, bitcoin.networks.bitcoin)));
    expect(deriveAddress(s, 1).address).toBe('bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g');
  });

  it('the account xpub equals the one derived from the BIP-39 seed at m/84h/0h/0h', () => {
    expect(ROOT_MAIN.derivePath("m/84'/0'/0'").neutered().toBase58()).toBe(BIP84_XPUB);
    expect(hex(ROOT_MAIN.fingerprint)).toBe('73c5da0a');
  });

  it('accepts the descriptor with origin and checksum, and keeps the origin', () => {
    const s = parseBitcoinKeySource({ descriptor: `wpkh([73c5da0a/84'/0'/0']${BIP84_XPUB}/0/*)#wc3n3van` }, 'mainnet');
    expect(s.origin).toEqual({ fingerprint: '73c5da0a', path: 'm/84h/0h/0h' });
    expect(s.descriptor).toBe(addDescriptorChecksum(`wpkh([73c5da0a/84h/0h/0h]${BIP84_XPUB}/0/*)`));
    expect(deriveAddress(s, 0).address).toBe('bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu');
  });

  it('accepts a multipath /<0;1>/* descriptor and uses the receive branch', () => {
    const multi = parseBitcoinKeySource({ descriptor: `wpkh([73c5da0a/84'/0'/0']${BIP84_XPUB}/<0;1>/*)#hpg6d6w2` }, 'mainnet');
    const single = parseBitcoinKeySource({ descriptor: `wpkh([73c5da0a/84h/0h/0h]${BIP84_XPUB}/0/*)` }, 'mainnet');
    expect(multi).toEqual(single);
    expect(deriveAddress(multi, 1).address).toBe('bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g');
  });

  it('re-parsing the canonical descriptor is a no-op (the stored form round-trips)', () => {
    const s = parseBitcoinKeySource({ xpub: BIP84_ZPUB }, 'mainnet');
    expect(parseBitcoinKeySource({ descriptor: s.descriptor }, 'mainnet')).toEqual(s);
    const fromJson = JSON.parse(JSON.stringify(s)) as BitcoinKeySource;
    expect(deriveAddress(fromJson, 0).address).toBe('bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu');
  });
});

describe('BIP-86 (P2TR) vectors', () => {
  const expected0 = 'bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr';
  const expected1 = 'bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh';

  it('derives the BIP-86 receive addresses and output script from a tr() descriptor', () => {
    const s = parseBitcoinKeySource({ descriptor: `tr([73c5da0a/86'/0'/0']${BIP86_XPUB}/0/*)#rg247h69` }, 'mainnet');
    expect(s.address_type).toBe('p2tr');
    const a0 = deriveAddress(s, 0);
    expect(a0.address).toBe(expected0);
    expect(hex(a0.scriptPubKey)).toBe('5120a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c');
    expect(deriveAddress(s, 1).address).toBe(expected1);
  });

  it('derives the same from the xpub with address_type p2tr', () => {
    expect(ROOT_MAIN.derivePath("m/86'/0'/0'").neutered().toBase58()).toBe(BIP86_XPUB);
    const s = parseBitcoinKeySource({ xpub: BIP86_XPUB, address_type: 'p2tr' }, 'mainnet');
    expect(deriveAddresses(s, 0, 2).map((a) => a.address)).toEqual([expected0, expected1]);
  });
});

describe('BIP-49 (P2SH-P2WPKH) vectors', () => {
  it('a upub implies p2sh-p2wpkh and derives the BIP-49 first testnet address', () => {
    const s = parseBitcoinKeySource({ xpub: BIP49_UPUB }, 'testnet');
    expect(s.address_type).toBe('p2sh-p2wpkh');
    expect(s.xpub).toBe(ROOT_TEST.derivePath("m/49'/1'/0'").neutered().toBase58());
    expect(s.xpub.startsWith('tpub')).toBe(true);
    const a0 = deriveAddress(s, 0);
    expect(a0.address).toBe('2Mww8dCYPUpKHofjgcXcBCEGmniw9CoaiD2');
    expect(hex(a0.scriptPubKey)).toBe('a914336caa13e08b96080a32b5d818d59b4ab3b3674287');
  });

  it('a mainnet ypub and sh(wpkh()) descriptor derive the same 3… addresses', () => {
    const account = ROOT_MAIN.derivePath("m/49'/0'/0'").neutered();
    const ypub = withVersion(account.toBase58(), 0x049d7cb2);
    expect(ypub.startsWith('ypub')).toBe(true);
    const fromYpub = parseBitcoinKeySource({ xpub: ypub }, 'mainnet');
    const fromDesc = parseBitcoinKeySource({ descriptor: `sh(wpkh([73c5da0a/49h/0h/0h]${account.toBase58()}/0/*))` }, 'mainnet');
    expect(fromYpub.address_type).toBe('p2sh-p2wpkh');
    const a = deriveAddress(fromYpub, 0).address;
    expect(a).toBe(deriveAddress(fromDesc, 0).address);
    expect(a).toBe('37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf');
  });
});

describe('regtest and signet', () => {
  const account = ROOT_TEST.derivePath("m/84'/1'/0'").neutered();
  const tpub = account.toBase58();
  const vpub = withVersion(tpub, 0x045f1cf6);
  const expectedRegtest = (i: number) =>
    bitcoin.payments.p2wpkh({ pubkey: ROOT_TEST.derivePath(`m/84'/1'/0'/0/${i}`).publicKey, network: bitcoin.networks.regtest }).address;

  it('a vpub on regtest derives bcrt1 P2WPKH addresses', () => {
    const s = parseBitcoinKeySource({ xpub: vpub }, 'regtest');
    expect(s).toMatchObject({ network: 'regtest', address_type: 'p2wpkh', xpub: tpub });
    const addrs = deriveAddresses(s, 0, 3);
    expect(addrs.map((a) => a.address)).toEqual([0, 1, 2].map(expectedRegtest));
    for (const a of addrs) expect(a.address.startsWith('bcrt1q')).toBe(true);
  });

  it('a tpub descriptor on regtest derives bcrt1 addresses; on signet tb1', () => {
    const r = parseBitcoinKeySource({ descriptor: `wpkh([73c5da0a/84h/1h/0h]${tpub}/0/*)` }, 'regtest');
    expect(deriveAddress(r, 5).address).toBe(expectedRegtest(5));
    const sig = parseBitcoinKeySource({ xpub: tpub }, 'signet');
    expect(deriveAddress(sig, 0).address.startsWith('tb1q')).toBe(true);
    const tr = parseBitcoinKeySource({ xpub: tpub, address_type: 'p2tr' }, 'regtest');
    expect(deriveAddress(tr, 0).address.startsWith('bcrt1p')).toBe(true);
  });
});

describe('deriveAddresses()', () => {
  const s = parseBitcoinKeySource({ xpub: BIP84_ZPUB }, 'mainnet');

  it('returns the same addresses as deriveAddress, in order, with their indexes', () => {
    const batch = deriveAddresses(s, 10, 20);
    expect(batch).toHaveLength(20);
    batch.forEach((a, i) => {
      expect(a.index).toBe(10 + i);
      expect(a).toEqual(deriveAddress(s, 10 + i));
    });
    expect(deriveAddresses(s, 0, 0)).toEqual([]);
  });

  it('rejects negative, fractional and hardened indexes', () => {
    expectKassaError(() => deriveAddress(s, -1), 'parameter_invalid', 'index');
    expectKassaError(() => deriveAddress(s, 1.5), 'parameter_invalid', 'index');
    expectKassaError(() => deriveAddress(s, 0x80000000), 'parameter_invalid', 'index');
    expectKassaError(() => deriveAddresses(s, 0, -1), 'parameter_invalid', 'count');
    expectKassaError(() => deriveAddresses(s, 0x7ffffff0, 100), 'parameter_invalid', 'count');
  });
});

describe('parseBitcoinKeySource() errors', () => {
  const NEVER = /never needs a private key/;

  it('rejects extended private keys (xprv, tprv, zprv, yprv, vprv) with private_key_not_allowed', () => {
    const xprv = ROOT_MAIN.derivePath("m/84'/0'/0'").toBase58();
    const tprv = ROOT_TEST.derivePath("m/84'/1'/0'").toBase58();
    expect(xprv.startsWith('xprv')).toBe(true);
    expect(tprv.startsWith('tprv')).toBe(true);
    expectKassaError(() => parseBitcoinKeySource({ xpub: xprv }, 'mainnet'), 'private_key_not_allowed', 'xpub', NEVER);
    expectKassaError(() => parseBitcoinKeySource({ xpub: tprv }, 'regtest'), 'private_key_not_allowed', 'xpub', NEVER);
    // even on the wrong network, a private key is reported as a private key first
    expectKassaError(() => parseBitcoinKeySource({ xpub: tprv }, 'mainnet'), 'private_key_not_allowed', 'xpub', NEVER);
    for (const v of [0x04b2430c, 0x049d7878]) {
      expectKassaError(() => parseBitcoinKeySource({ xpub: withVersion(xprv, v) }, 'mainnet'), 'private_key_not_allowed', 'xpub', NEVER);
    }
    expectKassaError(() => parseBitcoinKeySource({ xpub: withVersion(tprv, 0x045f18bc) }, 'testnet'), 'private_key_not_allowed', 'xpub', NEVER);
  });

  it('rejects WIF private keys (compressed and uncompressed, mainnet and test)', () => {
    const child = ROOT_MAIN.derivePath("m/84'/0'/0'/0/0");
    const wif = child.toWIF();
    expectKassaError(() => parseBitcoinKeySource({ xpub: wif }, 'mainnet'), 'private_key_not_allowed', 'xpub', NEVER);
    const uncompressed = new Uint8Array(33);
    uncompressed[0] = 0x80;
    uncompressed.set(child.privateKey!, 1);
    expectKassaError(() => parseBitcoinKeySource({ xpub: base58CheckEncode(uncompressed) }, 'mainnet'), 'private_key_not_allowed', 'xpub', NEVER);
    const testWif = ROOT_TEST.derivePath("m/84'/1'/0'/0/0").toWIF();
    expectKassaError(() => parseBitcoinKeySource({ descriptor: `wpkh(${testWif})` }, 'regtest'), 'private_key_not_allowed', 'descriptor', NEVER);
  });

  it('rejects descriptors that contain a private key, even with a valid checksum', () => {
    const xprv = ROOT_MAIN.derivePath("m/84'/0'/0'").toBase58();
    const d = addDescriptorChecksum(`wpkh([73c5da0a/84h/0h/0h]${xprv}/0/*)`);
    expectKassaError(() => parseBitcoinKeySource({ descriptor: d }, 'mainnet'), 'private_key_not_allowed', 'descriptor', NEVER);
    expectKassaError(() => parseBitcoinKeySource({ descriptor: `pkh(${xprv}/0/*)` }, 'mainnet'), 'private_key_not_allowed', 'descriptor', NEVER);
  });

  it('rejects keys for the wrong network with network_mismatch', () => {
    const tpub = ROOT_TEST.derivePath("m/84'/1'/0'").neutered().toBase58();
    expectKassaError(() => parseBitcoinKeySource({ xpub: BIP84_ZPUB }, 'regtest'), 'network_mismatch', 'xpub', /mainnet.*regtest/);
    expectKassaError(() => parseBitcoinKeySource({ xpub: BIP84_XPUB }, 'testnet'), 'network_mismatch', 'xpub');
    expectKassaError(() => parseBitcoinKeySource({ xpub: tpub }, 'mainnet'), 'network_mismatch', 'xpub', /test network.*mainnet/);
    expectKassaError(() => parseBitcoinKeySource({ xpub: BIP49_UPUB }, 'mainnet'), 'network_mismatch', 'xpub');
    expectKassaError(() => parseBitcoinKeySource({ descriptor: `wpkh(${BIP84_XPUB}/0/*)` }, 'regtest'), 'network_mismatch', 'descriptor');
  });

  it('rejects malformed extended keys: bad checksum, bad characters, wrong length, unknown version', () => {
    const typo = BIP84_XPUB.slice(0, 50) + (BIP84_XPUB[50] === 'a' ? 'b' : 'a') + BIP84_XPUB.slice(51);
    expectKassaError(() => parseBitcoinKeySource({ xpub: typo }, 'mainnet'), 'invalid_extended_key', 'xpub', /checksum/);
    expectKassaError(() => parseBitcoinKeySource({ xpub: BIP84_XPUB.replace('W', '0') }, 'mainnet'), 'invalid_extended_key', 'xpub', /Base58/);
    const d = base58CheckDecode(BIP84_XPUB);
    if (!d.ok) throw new Error('unreachable');
    expectKassaError(() => parseBitcoinKeySource({ xpub: base58CheckEncode(d.payload.subarray(0, 77)) }, 'mainnet'), 'invalid_extended_key', 'xpub', /77 bytes/);
    expectKassaError(() => parseBitcoinKeySource({ xpub: withVersion(BIP84_XPUB, 0x01020304) }, 'mainnet'), 'invalid_extended_key', 'xpub', /version/);
    const notOnCurve = new Uint8Array(d.payload);
    notOnCurve[45] = 0x05; // not a valid compressed-point prefix
    expectKassaError(() => parseBitcoinKeySource({ xpub: base58CheckEncode(notOnCurve) }, 'mainnet'), 'invalid_extended_key', 'xpub');
  });

  it('rejects multisig SLIP-132 keys (Zpub)', () => {
    expectKassaError(() => parseBitcoinKeySource({ xpub: withVersion(BIP84_XPUB, 0x02aa7ed3) }, 'mainnet'), 'unsupported_script_type', 'xpub', /multisig/);
  });

  it('rejects an address_type that contradicts the key or the descriptor', () => {
    expectKassaError(() => parseBitcoinKeySource({ xpub: BIP84_ZPUB, address_type: 'p2tr' }, 'mainnet'), 'address_type_mismatch', 'address_type');
    expectKassaError(() => parseBitcoinKeySource({ xpub: BIP49_UPUB, address_type: 'p2wpkh' }, 'testnet'), 'address_type_mismatch', 'address_type');
    expectKassaError(() => parseBitcoinKeySource({ descriptor: `wpkh(${BIP84_XPUB}/0/*)`, address_type: 'p2tr' }, 'mainnet'), 'address_type_mismatch', 'address_type');
    expectKassaError(() => parseBitcoinKeySource({ descriptor: `tr(${BIP84_ZPUB}/0/*)` }, 'mainnet'), 'address_type_mismatch', 'descriptor');
    expectKassaError(() => parseBitcoinKeySource({ xpub: BIP84_XPUB, address_type: 'p2pkh' as never }, 'mainnet'), 'parameter_invalid', 'address_type');
    // a matching address_type is fine
    expect(parseBitcoinKeySource({ xpub: BIP84_ZPUB, address_type: 'p2wpkh' }, 'mainnet').address_type).toBe('p2wpkh');
  });

  it('rejects a descriptor checksum mismatch', () => {
    expectKassaError(
      () => parseBitcoinKeySource({ descriptor: `wpkh([73c5da0a/84'/0'/0']${BIP84_XPUB}/0/*)#wc3n3vaa` }, 'mainnet'),
      'descriptor_checksum_mismatch',
      'descriptor',
    );
    expectKassaError(() => parseBitcoinKeySource({ descriptor: `wpkh(${BIP84_XPUB}/0/*)#abc` }, 'mainnet'), 'descriptor_checksum_mismatch', 'descriptor');
  });

  it('rejects unsupported script types (pkh, multi, wsh, tr with a script tree)', () => {
    for (const d of [
      `pkh(${BIP84_XPUB}/0/*)`,
      `wsh(multi(1,${BIP84_XPUB}/0/*,${BIP86_XPUB}/0/*))`,
      `sh(multi(1,${BIP84_XPUB}/0/*))`,
      `multi(1,${BIP84_XPUB}/0/*)`,
      `combo(${BIP84_XPUB}/0/*)`,
      `addr(bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu)`,
    ]) {
      expectKassaError(() => parseBitcoinKeySource({ descriptor: d }, 'mainnet'), 'unsupported_script_type', 'descriptor');
    }
    expectKassaError(
      () => parseBitcoinKeySource({ descriptor: `tr(${BIP86_XPUB}/0/*,pk(${BIP84_XPUB}/0/*))` }, 'mainnet'),
      'unsupported_script_type',
      'descriptor',
    );
  });

  it('rejects bad descriptor syntax, non-ranged keys, hardened and other derivations', () => {
    const bad = [
      `wpkh(${BIP84_XPUB}/0/*`,
      `wpkh[${BIP84_XPUB}/0/*]`,
      `foo(${BIP84_XPUB}/0/*)`,
      `wpkh([73c5da0/84h/0h/0h]${BIP84_XPUB}/0/*)`,
      `wpkh([73c5da0a/84x/0h/0h]${BIP84_XPUB}/0/*)`,
      `wpkh(${BIP84_XPUB})`,
      `wpkh(${BIP84_XPUB}/0/*h)`,
      `wpkh(${BIP84_XPUB}/1/*)`,
      `wpkh(${BIP84_XPUB}/*)`,
      `wpkh(0330d54fd0dd420a6e5f8d3624f5f3482cae350f79d5f0753bf5beef9c2d91af3c)`,
      'wpkh(a#b#c)',
    ];
    for (const d of bad) {
      const e = expectKassaError(() => parseBitcoinKeySource({ descriptor: d }, 'mainnet'), 'parameter_invalid', 'descriptor');
      expect(e.message.length).toBeGreaterThan(20);
    }
  });

  it('needs exactly one of descriptor / xpub', () => {
    expectKassaError(() => parseBitcoinKeySource({}, 'mainnet'), 'parameter_missing', 'xpub');
    expectKassaError(() => parseBitcoinKeySource({ xpub: '  ' }, 'mainnet'), 'parameter_missing', 'xpub');
    expectKassaError(() => parseBitcoinKeySource({ xpub: BIP84_XPUB, descriptor: `wpkh(${BIP84_XPUB}/0/*)` }, 'mainnet'), 'parameter_invalid', 'xpub');
    expectKassaError(() => parseBitcoinKeySource({ xpub: `wpkh(${BIP84_XPUB}/0/*)` }, 'mainnet'), 'parameter_invalid', 'xpub', /descriptor/);
  });

  it('rejects an unknown network', () => {
    expectKassaError(() => parseBitcoinKeySource({ xpub: BIP84_XPUB }, 'litecoin' as never), 'parameter_invalid', 'network');
  });
});
