/**
 * Receive-address derivation from a parsed `BitcoinKeySource`: `<account xpub>/0/<index>`.
 * Pure computation (no database, no node): used to fill the address pool ahead of time.
 */
import * as bitcoin from 'bitcoinjs-lib';
import type { BIP32Interface } from 'bip32';
import { ripemd160 } from '@noble/hashes/legacy';
import { sha256 } from '@noble/hashes/sha2';
import { invalidParam } from '../../errors.ts';
import { bip32, ensureEcc } from './ecc.ts';
import { bitcoinNetwork, type BitcoinAddressType } from './networks.ts';
import type { BitcoinKeySource } from './descriptor.ts';

export interface DerivedAddress {
  address: string;
  scriptPubKey: Uint8Array;
  index: number;
}

/** Largest non-hardened child index + 1. */
export const MAX_ADDRESS_INDEX = 0x7fffffff;
/** Upper bound for one `deriveAddresses` call (keeps a single request bounded). */
export const MAX_DERIVE_BATCH = 100_000;

function hash160(data: Uint8Array): Uint8Array {
  return ripemd160(sha256(data));
}

/** scriptPubKey and address for one compressed public key. */
export function addressForPublicKey(pubkey: Uint8Array, type: BitcoinAddressType, network: bitcoin.Network): { address: string; scriptPubKey: Uint8Array } {
  switch (type) {
    case 'p2wpkh': {
      const h = hash160(pubkey);
      const script = new Uint8Array(22);
      script[1] = 0x14;
      script.set(h, 2);
      return { address: bitcoin.address.toBech32(h, 0, network.bech32), scriptPubKey: script };
    }
    case 'p2sh-p2wpkh': {
      const redeem = new Uint8Array(22);
      redeem[1] = 0x14;
      redeem.set(hash160(pubkey), 2);
      const sh = hash160(redeem);
      const script = new Uint8Array(23);
      script[0] = 0xa9;
      script[1] = 0x14;
      script.set(sh, 2);
      script[22] = 0x87;
      return { address: bitcoin.address.toBase58Check(sh, network.scriptHash), scriptPubKey: script };
    }
    case 'p2tr': {
      ensureEcc();
      const p = bitcoin.payments.p2tr({ internalPubkey: pubkey.subarray(1, 33), network });
      return { address: p.address!, scriptPubKey: p.output! };
    }
  }
}

/** A small memo of receive-branch (`/0`) nodes, keyed by network + xpub. Pure cache. */
const RECEIVE_NODES = new Map<string, BIP32Interface>();
const RECEIVE_NODES_MAX = 1024;

function receiveNode(source: BitcoinKeySource): BIP32Interface {
  const key = `${source.network}|${source.xpub}`;
  let node = RECEIVE_NODES.get(key);
  if (!node) {
    const account = bip32().fromBase58(source.xpub, bitcoinNetwork(source.network));
    node = account.derive(0);
    if (RECEIVE_NODES.size >= RECEIVE_NODES_MAX) RECEIVE_NODES.delete(RECEIVE_NODES.keys().next().value!);
    RECEIVE_NODES.set(key, node);
  }
  return node;
}

function checkIndex(index: number, param: string): void {
  if (!Number.isSafeInteger(index) || index < 0 || index >= MAX_ADDRESS_INDEX) {
    throw invalidParam(param, `${param} must be an integer between 0 and ${MAX_ADDRESS_INDEX - 1}.`);
  }
}

/** Derives the receive address `/0/<index>` of a key source. */
export function deriveAddress(source: BitcoinKeySource, index: number): DerivedAddress {
  checkIndex(index, 'index');
  const child = receiveNode(source).derive(index);
  return { ...addressForPublicKey(child.publicKey, source.address_type, bitcoinNetwork(source.network)), index };
}

/** Derives `count` consecutive receive addresses starting at `from` (the `/0` node is derived once). */
export function deriveAddresses(source: BitcoinKeySource, from: number, count: number): DerivedAddress[] {
  checkIndex(from, 'from');
  if (!Number.isSafeInteger(count) || count < 0 || count > MAX_DERIVE_BATCH) {
    throw invalidParam('count', `count must be an integer between 0 and ${MAX_DERIVE_BATCH}.`);
  }
  if (from + count > MAX_ADDRESS_INDEX) throw invalidParam('count', `Indexes must stay below ${MAX_ADDRESS_INDEX}.`);
  const node = receiveNode(source);
  const network = bitcoinNetwork(source.network);
  const out: DerivedAddress[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const index = from + i;
    out[i] = { ...addressForPublicKey(node.derive(index).publicKey, source.address_type, network), index };
  }
  return out;
}
