/**
 * The one place that wires the pure-JS secp256k1 implementation into bitcoinjs-lib and bip32.
 *
 * bitcoinjs-lib keeps its ECC backend in a library-level slot; `initEccLib` is idempotent, so
 * calling `ensureEcc()` from every entry point that needs Taproot tweaks is cheap and safe.
 */
import * as ecc from '@bitcoinerlab/secp256k1';
import * as bitcoin from 'bitcoinjs-lib';
import { BIP32Factory, type BIP32API } from 'bip32';

let bip32Api: BIP32API | undefined;
let eccReady = false;

/** Registers the ECC backend with bitcoinjs-lib (needed for P2TR) exactly once. */
export function ensureEcc(): void {
  if (!eccReady) {
    bitcoin.initEccLib(ecc);
    eccReady = true;
  }
}

/** The bip32 API bound to the same ECC backend. */
export function bip32(): BIP32API {
  ensureEcc();
  bip32Api ??= BIP32Factory(ecc);
  return bip32Api;
}

export { ecc };
