/**
 * The merchant's wallet side of a Bitcoin refund in tests: signs the PSBT Kassa prepared with the
 * account key whose tpub Kassa holds (no key origin: every input names the account key's own
 * fingerprint and the path m/<branch>/<index> from it, docs/refunds.md), from the PSBT's own
 * BIP 32 derivations alone.
 */
import * as bitcoin from 'bitcoinjs-lib';
import type { BIP32Interface } from 'bip32';

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
