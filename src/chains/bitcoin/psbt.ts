/**
 * Merchant-signed Bitcoin transfers without a key (refunds and payouts, docs/refunds.md, rules 11
 * and 12): an unsigned PSBT (BIP 174) that spends only the merchant's own received outputs, with
 * each input's BIP 32 derivation (master fingerprint + path) so a hardware wallet, Sparrow or
 * Electrum can sign it, paying the destination and sending the change to the merchant's next
 * receive address; and the check of the signed PSBT the merchant uploads: it must carry exactly
 * that unsigned transaction, fully signed.
 */
import * as bitcoin from 'bitcoinjs-lib';
import { bip32, ecc, ensureEcc } from './ecc.ts';
import { bitcoinNetwork } from './networks.ts';
import type { BitcoinKeySource } from './descriptor.ts';
import { invalidParam, unprocessable } from '../../errors.ts';

/** One received output of the merchant's that the transfer may spend. */
export interface SpendableOutput {
  txid: string;
  vout: number;
  value: bigint;
  script: Uint8Array;
  /** The full transaction that created the output (hardware wallets want it for segwit v0 too). */
  prevTx: Uint8Array;
  source: BitcoinKeySource;
  index: number;
}

export interface ChangeTarget {
  script: Uint8Array;
  source: BitcoinKeySource;
  index: number;
}

/** Outputs below this many satoshis are not relayed by nodes (P2WPKH dust limit, the smallest common one). */
export const DUST_SATS = 294n;

/** Virtual bytes of one input, by address type (signed, worst case). */
const INPUT_VBYTES: Record<BitcoinKeySource['address_type'], number> = { p2wpkh: 68, 'p2sh-p2wpkh': 91, p2tr: 58 };
/** Version, counts, locktime, segwit marker and flag. */
const TX_OVERHEAD_VBYTES = 11;

const outputVbytes = (script: Uint8Array): number => 8 + 1 + script.length;

/** Fee rate as satoshis per 1000 vbytes (an integer) from a decimal sat/vB string with ≤ 3 decimals. */
export function parseFeeRate(value: unknown, param = 'fee_rate'): bigint {
  if (typeof value !== 'string' || !/^(0|[1-9][0-9]{0,5})(\.[0-9]{1,3})?$/.test(value)) {
    throw invalidParam(param, `${param} must be a decimal string of satoshis per virtual byte, such as "2" or "12.5" (at most 3 decimals).`, 'fee_rate_invalid');
  }
  const [w, f = ''] = value.split('.');
  const perKvb = BigInt(w!) * 1000n + BigInt(f.padEnd(3, '0'));
  if (perKvb < 1000n) throw invalidParam(param, `${param} must be at least 1 sat/vB: nodes do not relay cheaper transactions.`, 'fee_rate_invalid');
  return perKvb;
}

export function formatFeeRate(perKvb: bigint): string {
  const w = perKvb / 1000n;
  const f = (perKvb % 1000n).toString().padStart(3, '0').replace(/0+$/, '');
  return f ? `${w}.${f}` : `${w}`;
}

/** An amount of BTC as Core writes it (a JSON number with at most 8 decimals) → satoshis. */
export function satsFromNode(btc: number): bigint {
  // Read it as a decimal string, never do float maths.
  const s = btc.toFixed(8);
  const [w, f] = s.split('.');
  return BigInt(w!) * 100_000_000n + BigInt(f!);
}

/** Core's `estimatesmartfee` feerate (BTC per kvB, a JSON number) → sat per kvB. */
export const feeRateFromNode = satsFromNode;

/** BIP 32 derivation of `<account>/<branch>/<index>`: master fingerprint and full path when the key origin is known. */
export function derivationOf(source: BitcoinKeySource, branch: number, index: number): { masterFingerprint: Uint8Array; path: string; pubkey: Uint8Array } {
  ensureEcc();
  const account = bip32().fromBase58(source.xpub, bitcoinNetwork(source.network));
  const pubkey = account.derive(branch).derive(index).publicKey;
  if (source.origin) {
    const path = `${source.origin.path.replace(/h/g, "'")}/${branch}/${index}`;
    return { masterFingerprint: Buffer.from(source.origin.fingerprint, 'hex'), path, pubkey };
  }
  // Without a key origin, the account key is the only root Kassa knows (docs/refunds.md).
  return { masterFingerprint: account.fingerprint, path: `m/${branch}/${index}`, pubkey };
}

export interface BuiltPsbt {
  psbt: string;
  unsignedTxid: string;
  networkFee: bigint;
  change: bigint;
}

/**
 * The unsigned PSBT: every input in `inputs` (a refund spends all of its invoice's outputs
 * together, so nothing of the invoice stays behind half-spent; a payout passes what it selected),
 * one output of `amount` to `destination` (output 0), and the change (inputs − amount − network
 * fee) to `change`, dropped into the fee when it would be dust. 422 `insufficient_funds_for_fee`
 * when the inputs cannot pay both.
 */
export function buildTransferPsbt(p: {
  network: bitcoin.Network;
  inputs: SpendableOutput[];
  destination: Uint8Array;
  amount: bigint;
  change: ChangeTarget;
  feeRatePerKvb: bigint;
  /** What the merchant can do when the inputs cannot pay the amount and the fee (the message's last sentence). */
  shortfallHint?: string;
}): BuiltPsbt {
  ensureEcc();
  if (p.amount < DUST_SATS) throw unprocessable('amount_below_dust', `${p.amount} sat is below the ${DUST_SATS}-satoshi dust limit: nodes do not relay such an output.`, 'amount');
  if (p.inputs.length === 0) throw unprocessable('nothing_to_spend', 'There are no unspent received outputs left to pay this from: were they already spent from your wallet?');
  const total = p.inputs.reduce((s, i) => s + i.value, 0n);
  const vbytesWith = (withChange: boolean) =>
    TX_OVERHEAD_VBYTES + p.inputs.reduce((s, i) => s + INPUT_VBYTES[i.source.address_type], 0) + outputVbytes(p.destination) + (withChange ? outputVbytes(p.change.script) : 0);
  const feeFor = (vb: number) => (BigInt(vb) * p.feeRatePerKvb + 999n) / 1000n;
  let fee = feeFor(vbytesWith(true));
  let change = total - p.amount - fee;
  if (change < DUST_SATS) {
    fee = feeFor(vbytesWith(false));
    change = 0n;
    if (total - p.amount < fee) {
      throw unprocessable('insufficient_funds_for_fee',
        `The outputs it can spend (${total} sat) cannot pay ${p.amount} sat and the network fee (${fee} sat at ${formatFeeRate(p.feeRatePerKvb)} sat/vB). ${p.shortfallHint ?? 'Choose a smaller amount.'}`);
    }
    fee = total - p.amount; // the dust remainder goes to the miners
  }
  if (p.inputs.some((i) => i.source.address_type === 'p2tr')) {
    throw unprocessable('input_type_unsupported', 'Spending from Taproot (P2TR) deposit addresses is not supported yet.');
  }
  const psbt = new bitcoin.Psbt({ network: p.network });
  for (const i of p.inputs) {
    const d = derivationOf(i.source, 0, i.index);
    const input: Parameters<bitcoin.Psbt['addInput']>[0] = {
      hash: i.txid, index: i.vout, sequence: 0xfffffffd, // BIP 125: the merchant can bump the fee
      witnessUtxo: { script: i.script, value: i.value },
      nonWitnessUtxo: i.prevTx,
      bip32Derivation: [{ masterFingerprint: d.masterFingerprint, path: d.path, pubkey: d.pubkey }],
    };
    if (i.source.address_type === 'p2sh-p2wpkh') input.redeemScript = bitcoin.payments.p2wpkh({ pubkey: d.pubkey, network: p.network }).output!;
    psbt.addInput(input);
  }
  psbt.addOutput({ script: p.destination, value: p.amount });
  if (change > 0n) {
    const d = derivationOf(p.change.source, 0, p.change.index);
    psbt.addOutput({ script: p.change.script, value: change, bip32Derivation: [{ masterFingerprint: d.masterFingerprint, path: d.path, pubkey: d.pubkey }] });
  }
  return { psbt: psbt.toBase64(), unsignedTxid: unsignedTxidOf(psbt), networkFee: fee, change };
}

function unsignedTxidOf(psbt: bitcoin.Psbt): string {
  // The unsigned transaction's id (no witnesses, empty scriptSigs): what the signers must keep unchanged.
  const tx = bitcoin.Transaction.fromBuffer((psbt.data.globalMap.unsignedTx as unknown as { toBuffer(): Uint8Array }).toBuffer());
  return tx.getId();
}

/**
 * Checks a signed PSBT against the one Kassa built: same unsigned transaction (so it spends only
 * the outputs Kassa chose and pays the destination exactly the amount), every input signed with a
 * valid signature; then finalizes it. Returns the raw transaction and its txid.
 */
export function finalizeSignedPsbt(p: { network: bitcoin.Network; signedBase64: unknown; expectedUnsignedTxid: string; destination: Uint8Array; amount: bigint }): { txid: string; hex: string } {
  ensureEcc();
  if (typeof p.signedBase64 !== 'string' || p.signedBase64.length === 0 || p.signedBase64.length > 400_000) {
    throw invalidParam('psbt', 'psbt must be the signed PSBT as a base64 string.', 'psbt_invalid');
  }
  let psbt: bitcoin.Psbt;
  try {
    psbt = bitcoin.Psbt.fromBase64(p.signedBase64.trim(), { network: p.network });
  } catch {
    throw invalidParam('psbt', 'This is not a PSBT (BIP 174) in base64: export the signed transaction from your wallet as a PSBT.', 'psbt_invalid');
  }
  if (unsignedTxidOf(psbt) !== p.expectedUnsignedTxid) {
    throw unprocessable('psbt_mismatch', 'This PSBT is not the transaction Kassa prepared: its inputs or outputs differ. Sign the PSBT Kassa gave you without changing it.', 'psbt');
  }
  // Belt and braces: the agreed transaction pays the destination the amount.
  const paid = psbt.txOutputs.filter((o) => Buffer.from(o.script).equals(Buffer.from(p.destination))).reduce((s, o) => s + o.value, 0n);
  if (paid !== p.amount) throw unprocessable('psbt_mismatch', 'This PSBT does not pay the destination the amount.', 'psbt');
  for (let i = 0; i < psbt.inputCount; i++) {
    const input = psbt.data.inputs[i]!;
    if (input.finalScriptWitness || input.finalScriptSig) continue; // finalized by the wallet
    if (!input.partialSig?.length) throw unprocessable('psbt_not_signed', `Input ${i} of the PSBT is not signed yet: sign every input, then upload it again.`, 'psbt');
    let valid = false;
    try {
      valid = psbt.validateSignaturesOfInput(i, (pubkey, msghash, signature) => ecc.verify(msghash, pubkey, signature));
    } catch {
      valid = false;
    }
    if (!valid) throw unprocessable('psbt_signature_invalid', `The signature of input ${i} is not valid for this transaction.`, 'psbt');
    psbt.finalizeInput(i);
  }
  const tx = psbt.extractTransaction();
  return { txid: tx.getId(), hex: tx.toHex() };
}
