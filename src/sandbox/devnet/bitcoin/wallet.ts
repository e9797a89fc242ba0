/**
 * The devnet's HD wallet: BIP84-style P2WPKH keys (m/84'/1'/0'/{0,1}/i) from a seed, bcrt1
 * addresses. It only knows keys; coins are looked up in the chain state (chain.ts).
 */
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from '@bitcoinerlab/secp256k1';
import { BIP32Factory, type BIP32Interface } from 'bip32';
import { sha256 } from '@noble/hashes/sha256';
import { toHex } from './util.ts';

bitcoin.initEccLib(ecc);
const bip32 = BIP32Factory(ecc);

export const REGTEST = bitcoin.networks.regtest;

/** Deterministic default seed: sha256("kassa-devnet-bitcoin"). Never use outside the devnet. */
export const DEFAULT_DEVNET_SEED = toHex(sha256(new TextEncoder().encode('kassa-devnet-bitcoin')));

export interface WalletKey {
  path: string;
  address: string;
  script: Uint8Array;
  pubkey: Uint8Array;
  node: BIP32Interface;
}

export class DevnetWallet {
  private readonly account: BIP32Interface;
  private readonly byScript = new Map<string, WalletKey>();
  private next: [number, number] = [0, 0];

  /** @param seedHex the BIP32 seed as hex (16..64 bytes). */
  constructor(seedHex: string = DEFAULT_DEVNET_SEED) {
    const root = bip32.fromSeed(new Uint8Array(Buffer.from(seedHex, 'hex')), REGTEST);
    this.account = root.derivePath("m/84'/1'/0'");
  }

  /** A fresh receive (chain 0) or change (chain 1) address. */
  newKey(change = false): WalletKey {
    const chain = change ? 1 : 0;
    const index = this.next[chain]++;
    const node = this.account.derive(chain).derive(index);
    const pay = bitcoin.payments.p2wpkh({ pubkey: node.publicKey, network: REGTEST });
    const key: WalletKey = {
      path: `m/84'/1'/0'/${chain}/${index}`,
      address: pay.address!,
      script: pay.output!,
      pubkey: node.publicKey,
      node,
    };
    this.byScript.set(toHex(key.script), key);
    return key;
  }

  keyForScript(script: Uint8Array): WalletKey | undefined {
    return this.byScript.get(toHex(script));
  }

  isMine(script: Uint8Array): boolean {
    return this.byScript.has(toHex(script));
  }
}
