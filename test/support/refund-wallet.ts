/**
 * The merchant's wallet side of a Bitcoin refund in tests: signs the PSBT Kassa prepared with the
 * account key whose tpub Kassa holds (no key origin: every input names the account key's own
 * fingerprint and the path m/<branch>/<index> from it, docs/refunds.md), from the PSBT's own
 * BIP 32 derivations alone.
 */
import * as bitcoin from 'bitcoinjs-lib';
import type { BIP32Interface } from 'bip32';
import { bip32 } from '../../src/chains/bitcoin/ecc.ts';
import { bitcoinNetwork } from '../../src/chains/bitcoin/networks.ts';

export function signRefundPsbt(psbtBase64: string, account: BIP32Interface, network: bitcoin.Network): string {
  const psbt = bitcoin.Psbt.fromBase64(psbtBase64, { network });
  psbt.data.inputs.forEach((input, i) => {
    const d = input.bip32Derivation?.[0];
    if (!d || Buffer.compare(Buffer.from(d.masterFingerprint), Buffer.from(account.fingerprint)) !== 0) throw new Error(`PSBT input ${i} is not derived from this account key`);
    const [m, branch, index, ...rest] = d.path.split('/');
    if (m !== 'm' || rest.length) throw new Error(`PSBT input ${i}: unexpected path ${d.path}`);
    psbt.signInput(i, account.derive(Number(branch)).derive(Number(index)));
  });
  return psbt.toBase64();
}

/**
 * A merchant's BIP 84 testnet wallet known only to a test, from a one-byte seed: the master key
 * (`root`, to sign with `signAllInputsHD`), the account key, the master fingerprint (hex) and the
 * receive descriptor with its key origin that Kassa is given (`wpkh([fp/84h/1h/0h]tpub…/0/*)`).
 */
export function testMerchantWallet(seedByte: number): { root: BIP32Interface; account: BIP32Interface; fingerprint: string; descriptor: string } {
  const root = bip32().fromSeed(Buffer.alloc(32, seedByte), bitcoinNetwork('testnet'));
  const account = root.derivePath("m/84'/1'/0'");
  const fingerprint = Buffer.from(root.fingerprint).toString('hex');
  return { root, account, fingerprint, descriptor: `wpkh([${fingerprint}/84h/1h/0h]${account.neutered().toBase58()}/0/*)` };
}
