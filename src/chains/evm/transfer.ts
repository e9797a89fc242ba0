/**
 * Merchant-signed transfers on an EVM chain (src/chains/transfer.ts; docs/refunds.md): approval
 * answers the exact transaction the merchant's wallet sends from the treasury (EIP-1193
 * `eth_sendTransaction` parameters and an EIP-681 link), the merchant reports its hash, and every
 * check — at the report and at each tracking pass — is `checkEvmTransfer` (transfer-check.ts).
 */
import { TransactionNotFoundError, TransactionReceiptNotFoundError, type Hex } from 'viem';
import type { EvmChainConfig } from '../../config.ts';
import type { Sql } from '../../db/client.ts';
import { conflict, invalidParam, unprocessable, UpstreamError } from '../../errors.ts';
import { formatAmount } from '../../money/amount.ts';
import type { MerchantSignedTransfers, TransferTarget } from '../transfer.ts';
import { createEvmClient, type EvmClient } from './client.ts';
import { buildEvmTransferTx, checkEvmTransfer, evmTransferLink, type EvmTransferTarget, type SeenReceipt, type SeenTx } from './transfer-check.ts';

export function evmTransfers(chain: string, cfg: EvmChainConfig, deps: { sql: Sql }): MerchantSignedTransfers {
  let client: EvmClient | undefined;
  const node = () => (client ??= createEvmClient(cfg)).public;
  const targetOf = (t: TransferTarget): EvmTransferTarget => ({ chainId: cfg.chain_id, token: t.token, destination: t.destination, amount: t.amount });
  const fmt = (t: TransferTarget) => (v: bigint) => `${formatAmount(v, t.decimals)} ${t.asset}`;

  function upstream(err: unknown): UpstreamError {
    return new UpstreamError('evm_node_unreachable', `The ${chain} node did not answer (${(err as Error).message.split('\n')[0]}). Try again.`);
  }

  /** The transaction and (once mined) its receipt; null when the node does not know it. */
  async function seenOnChain(hash: Hex): Promise<{ tx: SeenTx; receipt: SeenReceipt | null } | null> {
    let tx: SeenTx;
    try {
      const t = await node().getTransaction({ hash });
      tx = { hash: t.hash, from: t.from, to: t.to, value: t.value, input: t.input, nonce: t.nonce, chainId: t.chainId };
    } catch (err) {
      if (err instanceof TransactionNotFoundError) return null;
      throw upstream(err);
    }
    try {
      const rc = await node().getTransactionReceipt({ hash });
      return { tx, receipt: { status: rc.status, blockNumber: rc.blockNumber, logs: rc.logs } };
    } catch (err) {
      if (err instanceof TransactionReceiptNotFoundError) return { tx, receipt: null };
      throw upstream(err);
    }
  }

  const parseTxid = (raw: unknown): Hex => {
    if (typeof raw !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(raw)) {
      throw invalidParam('txid', 'txid must be a transaction hash: 0x followed by 64 hexadecimal characters.', 'txid_invalid');
    }
    return raw.toLowerCase() as Hex;
  };

  return {
    signing: 'wallet',

    async prepare(req) {
      if (req.feeRate !== undefined) throw invalidParam('fee_rate', 'fee_rate applies to Bitcoin only: on an EVM chain your wallet sets the gas price.', 'parameter_invalid');
      const [settings] = await deps.sql<{ treasury: string }[]>`select treasury from merchant_evm_settings where merchant_id = ${req.merchantId} and chain = ${chain}`;
      const evmTx = buildEvmTransferTx({ ...targetOf(req.target), from: settings?.treasury ?? null });
      return async () => ({ evm_tx: evmTx });
    },

    acceptSigned() {
      throw unprocessable('signed_psbt_unsupported', `On ${chain} your wallet sends the transaction itself: report its hash instead of uploading a PSBT.`, 'psbt');
    },

    parseTxid,

    async checkReported(rec, target, raw, noun) {
      const txid = parseTxid(raw);
      const seen = await seenOnChain(txid);
      if (!seen) throw unprocessable('transaction_not_found', `The ${chain} node does not know transaction ${txid}: check the network, and report it once your wallet has sent it.`, 'txid');
      const check = checkEvmTransfer(targetOf(target), seen.tx, seen.receipt, fmt(target));
      if (!check.ok) throw unprocessable(check.code, check.message, 'txid');
      if (rec.txid !== null && rec.txid !== txid) {
        // A replacement (speed-up or cancel-and-resend in the wallet): same sender and nonce, so only one of the two can ever be mined.
        const recorded = await seenOnChain(rec.txid as Hex);
        if (recorded?.receipt || rec.sender?.toLowerCase() !== check.sender.toLowerCase() || BigInt(check.nonce) !== rec.evm_nonce) {
          throw conflict(`${noun}_already_broadcast`, `${noun === 'refund' ? 'Refund' : 'Payout'} ${rec.id} is already paid by ${rec.txid}${recorded?.receipt ? ' (mined)' : ''}; another transaction is accepted only as its replacement (same sender and nonce).`, 'txid');
        }
      }
      return { txid, sender: check.sender, evm_nonce: BigInt(check.nonce), block_number: seen.receipt?.blockNumber ?? null, output_index: null, mined: check.mined };
    },

    // Kassa never sees the signed bytes: the wallet sends (and re-sends) the transaction.
    send: async () => null,

    async startPass() {
      const tip = await node().getBlockNumber().catch((err: unknown) => { throw upstream(err); });
      return async (rec, target) => {
        const seen = await seenOnChain(rec.txid as Hex);
        if (!seen) return { state: 'missing' };
        const check = checkEvmTransfer(targetOf(target), seen.tx, seen.receipt, fmt(target));
        // Mined, but not what it was accepted as (reverted, or the transfer differs).
        if (!check.ok) return { state: 'failed', code: check.code, reason: check.message };
        const mined = seen.receipt;
        return { state: 'seen', confirmations: mined ? tip - mined.blockNumber + 1n : 0n, blockNumber: mined?.blockNumber ?? null };
      };
    },

    view(rec, target) {
      return {
        bitcoin: null,
        evm: {
          transaction: rec.evm_tx,
          link: rec.evm_tx && target ? evmTransferLink(targetOf(target)) : null,
          sender: rec.sender,
          block_number: rec.block_number === null ? null : Number(rec.block_number),
        },
      };
    },
  };
}
