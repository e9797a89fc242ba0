/**
 * Merchant-signed transfers on Bitcoin (src/chains/transfer.ts; docs/refunds.md): approval builds an
 * unsigned PSBT over the merchant's own received outputs that the node still has unspent
 * (`gettxout`), with their BIP 32 derivations, the change to the merchant's next pool address and the
 * fee rate from `estimatesmartfee`; the signed PSBT must be that transaction (psbt.ts); a
 * transaction reported by txid must pay the destination the amount; tracking reads the
 * confirmations of the output that pays the destination and re-sends a recorded transaction the
 * node lost.
 */
import * as bitcoin from 'bitcoinjs-lib';
import type { BitcoinChainConfig } from '../../config.ts';
import type { Sql } from '../../db/client.ts';
import { conflict, invalidParam, unprocessable } from '../../errors.ts';
import { formatAmount } from '../../money/amount.ts';
import type { MerchantSignedTransfers, SpendFrom, TransferRecord } from '../transfer.ts';
import { allocateBitcoinAddress } from './address-pool.ts';
import type { BitcoinKeySource } from './descriptor.ts';
import { bitcoinNetwork } from './networks.ts';
import { buildTransferPsbt, feeRateFromNode, finalizeSignedPsbt, formatFeeRate, parseFeeRate, satsFromNode, type SpendableOutput } from './psbt.ts';
import { createBitcoinRpcClient, isBitcoinRpcError, type BitcoinRpcClient } from './rpc.ts';

/** Estimate horizon for `estimatesmartfee` (blocks). */
const FEE_TARGET_BLOCKS = 6;
/** A payout spends at most this many outputs (a larger one: pay it in parts). */
const MAX_PAYOUT_INPUTS = 200;
/** Worst-case virtual bytes of one input and of the transaction without inputs (for selecting outputs; the PSBT's fee is exact). */
const SELECT_INPUT_VBYTES = 91n;
const SELECT_BASE_VBYTES = 11n + 2n * 43n;

type Candidate = { txid: string; output_index: number; amount: bigint; script: Buffer; derivation: { source_id?: number; index?: number }; source: BitcoinKeySource | null };

export function bitcoinTransfers(chain: string, cfg: BitcoinChainConfig, deps: { sql: Sql; rpc?: BitcoinRpcClient }): MerchantSignedTransfers {
  const { sql } = deps;
  const network = bitcoinNetwork(cfg.network);

  function rpc(): BitcoinRpcClient {
    if (deps.rpc) return deps.rpc;
    if (!cfg.rpc) {
      throw unprocessable('bitcoin_rpc_required', `Bitcoin refunds and payouts need a Bitcoin Core RPC endpoint for chain "${chain}" (chains.${chain}.rpc): Esplora cannot estimate fees this way.`);
    }
    return createBitcoinRpcClient({
      name: chain, url: cfg.rpc.url,
      ...(cfg.rpc.user !== undefined ? { user: cfg.rpc.user } : {}),
      ...(cfg.rpc.password !== undefined ? { password: cfg.rpc.password } : {}),
    });
  }

  async function nodeFeeRate(node: BitcoinRpcClient): Promise<bigint> {
    let answer: { feerate?: number; errors?: string[] };
    try {
      answer = await node.call('estimatesmartfee', [FEE_TARGET_BLOCKS]);
    } catch (err) {
      if (isBitcoinRpcError(err)) {
        throw unprocessable('fee_rate_unavailable', `The Bitcoin node gave no fee estimate (${err.rpcMessage}). Approve again with "fee_rate" in sat/vB.`, 'fee_rate');
      }
      throw err;
    }
    if (typeof answer?.feerate !== 'number' || !(answer.feerate > 0)) {
      throw unprocessable('fee_rate_unavailable', `The Bitcoin node has no fee estimate yet${answer?.errors?.length ? ` (${answer.errors.join('; ')})` : ''}. Approve again with "fee_rate" in sat/vB.`, 'fee_rate');
    }
    const perKvb = feeRateFromNode(answer.feerate);
    return perKvb < 1000n ? 1000n : perKvb;
  }

  /** The confirmed received outputs `spend` allows, in the order they are taken. */
  function candidates(spend: SpendFrom, method: string) {
    const base = sql`
      select p.txid, p.output_index, p.amount, d.script, d.derivation, s.source
      from payments p
      join deposit_addresses d on d.chain = p.chain and d.address = p.address
      left join bitcoin_key_sources s on s.id = (d.derivation->>'source_id')::bigint`;
    if ('invoiceId' in spend) {
      return sql<Candidate[]>`${base}
        where p.invoice_id = ${spend.invoiceId} and p.method = ${method} and p.status = 'confirmed'
        order by p.seq`;
    }
    // A payout leaves alone the outputs of invoices with a refund under way (the refund will spend them).
    return sql<Candidate[]>`${base}
      where p.merchant_id = ${spend.anyInvoiceOf} and p.chain = ${chain} and p.method = ${method} and p.status = 'confirmed'
        and not exists (select 1 from refunds r where r.invoice_id = p.invoice_id and r.method = p.method
                        and r.status in ('awaiting_destination', 'awaiting_approval', 'awaiting_signature'))
      order by p.amount desc, p.seq
      limit 2000`;
  }

  return {
    signing: 'psbt',

    async prepare(req) {
      const node = rpc();
      const feeRatePerKvb = req.feeRate !== undefined ? parseFeeRate(req.feeRate) : await nodeFeeRate(node);
      const all = 'anyInvoiceOf' in req.spend;
      const inputs: SpendableOutput[] = [];
      let total = 0n;
      for (const o of await candidates(req.spend, req.target.method)) {
        if (!o.source || o.derivation.index === undefined) {
          if (all) continue; // a payout simply does not use an output it cannot describe
          throw unprocessable('derivation_unknown', `Kassa does not know the key derivation of ${o.txid}:${o.output_index}, so it cannot prepare a PSBT for it.`);
        }
        const unspent = await node.call<unknown>('gettxout', [o.txid, o.output_index, true]);
        if (unspent === null) continue; // already spent (from the merchant's wallet, or an earlier refund or payout)
        const prevTx = await node.getRawTransactionRaw(o.txid);
        inputs.push({ txid: o.txid, vout: o.output_index, value: o.amount, script: new Uint8Array(o.script), prevTx, source: o.source, index: o.derivation.index });
        total += o.amount;
        if (all) {
          const fee = ((SELECT_BASE_VBYTES + SELECT_INPUT_VBYTES * BigInt(inputs.length)) * feeRatePerKvb + 999n) / 1000n;
          if (total >= req.target.amount + fee || inputs.length >= MAX_PAYOUT_INPUTS) break;
        }
      }
      const destination = bitcoin.address.toOutputScript(req.target.destination, network);
      return async (tx) => {
        const change = await allocateBitcoinAddress(tx, req.merchantId, chain);
        if (!change) throw unprocessable('bitcoin_key_source_missing', 'Set a Bitcoin key source (payment method) first: the change goes to its next address.');
        const [src] = await tx<{ source: BitcoinKeySource }[]>`select source from bitcoin_key_sources where id = ${change.derivation.source_id}`;
        const built = buildTransferPsbt({
          network, inputs, destination, amount: req.target.amount, feeRatePerKvb, shortfallHint: req.shortfallHint,
          change: { script: change.script, source: src!.source, index: change.derivation.index },
        });
        return { psbt: built.psbt, unsigned_txid: built.unsignedTxid, fee_rate: formatFeeRate(feeRatePerKvb), network_fee: built.networkFee };
      };
    },

    acceptSigned(rec, signed) {
      const final = finalizeSignedPsbt({
        network, signedBase64: signed, expectedUnsignedTxid: rec.unsigned_txid!,
        destination: bitcoin.address.toOutputScript(rec.destination!, network), amount: rec.amount,
      });
      return { txid: final.txid, raw_tx: final.hex };
    },

    parseTxid(raw) {
      if (typeof raw !== 'string' || !/^[0-9a-fA-F]{64}$/.test(raw)) {
        throw invalidParam('txid', 'txid must be a Bitcoin transaction id: 64 hexadecimal characters.', 'txid_invalid');
      }
      return raw.toLowerCase();
    },

    async checkReported(rec, target, raw, noun) {
      const txid = this.parseTxid(raw);
      if (rec.txid !== null && rec.txid !== txid) {
        throw conflict(`${noun}_already_broadcast`, `This ${noun} is already paid by ${rec.txid}; a Bitcoin transaction cannot be replaced by reporting another one.`, 'txid');
      }
      let tx: { confirmations?: number; vout: { n: number; value: number; scriptPubKey: { hex: string } }[] };
      try {
        tx = await rpc().call('getrawtransaction', [txid, 1]);
      } catch (err) {
        if (isBitcoinRpcError(err, -5)) {
          throw unprocessable('transaction_not_found', `The ${chain} node does not know transaction ${txid}: check the network, and report it once your wallet has sent it (a confirmed transaction not in the mempool needs txindex=1 on the node).`, 'txid');
        }
        throw err;
      }
      const script = Buffer.from(bitcoin.address.toOutputScript(target.destination, network)).toString('hex');
      const paying = tx.vout.filter((o) => o.scriptPubKey.hex === script);
      const paid = paying.reduce((s, o) => s + satsFromNode(o.value), 0n);
      const fmt = (v: bigint) => `${formatAmount(v, target.decimals)} ${target.asset}`;
      if (paying.length === 0) throw unprocessable('transaction_wrong_recipient', `Transaction ${txid} does not pay the destination ${target.destination}.`, 'txid');
      if (paid !== target.amount) throw unprocessable('transaction_wrong_amount', `Transaction ${txid} pays the destination ${fmt(paid)}, but it should be ${fmt(target.amount)}.`, 'txid');
      return { txid, sender: null, evm_nonce: null, block_number: null, output_index: paying[0]!.n, mined: (tx.confirmations ?? 0) > 0 };
    },

    async send(rec) {
      if (rec.raw_tx === null) return null; // reported by txid: the merchant's wallet sent it
      try {
        await rpc().sendRawTransaction(rec.raw_tx);
      } catch (err) {
        if (!isBitcoinRpcError(err)) throw err; // transport trouble: stays broadcast; uploading again or the tracker re-sends it
        // -27: already in the chain. A known mempool transaction is accepted without error by Core 22+.
        if (err.rpcCode === -27 || /already (in|known)|txn-already/i.test(err.rpcMessage)) return null;
        if (err.rpcCode === -25 || err.rpcCode === -26) return { rejected: err.rpcMessage };
        throw err;
      }
      return null;
    },

    /**
     * Confirmations come from `gettxout` on the output that pays the destination, or from
     * `getrawtransaction` when it was already spent (Core needs txindex=1 for that case).
     */
    async startPass() {
      const node = rpc();
      return async (rec: TransferRecord) => {
        const utxo = await node.call<{ confirmations: number } | null>('gettxout', [rec.txid, rec.output_index ?? 0, true]);
        if (utxo) return { state: 'seen', confirmations: BigInt(utxo.confirmations), blockNumber: null };
        try {
          const tx = await node.call<{ confirmations?: number }>('getrawtransaction', [rec.txid, 1]);
          return { state: 'seen', confirmations: BigInt(tx.confirmations ?? 0), blockNumber: null };
        } catch (err) {
          if (!isBitcoinRpcError(err, -5)) throw err;
          return { state: 'missing' }; // the node does not know it
        }
      };
    },

    view(rec, _target, awaitingSignature) {
      const fee = rec.network_fee === null ? null : formatAmount(rec.network_fee, rec.decimals);
      return { bitcoin: { psbt: awaitingSignature ? rec.psbt : null, fee_rate: rec.fee_rate, network_fee: fee }, evm: null };
    },
  };
}
