/**
 * A transfer the merchant signs (docs/refunds.md: refunds and payouts): Kassa prepares it, the
 * merchant's own wallet signs it, Kassa checks what was signed or sent, records it and follows it
 * to its confirmations. What depends on the chain family (the unsigned PSBT over the merchant's own
 * outputs, or the EVM transaction from the treasury; the checks; the node calls) is this interface,
 * implemented beside each family's chain code (src/chains/bitcoin/transfer.ts,
 * src/chains/evm/transfer.ts); src/chains/transfers.ts picks the one of a chain. The refund and
 * payout services hold the money rules, the states and the database, and never branch on a chain's
 * type.
 */
import type { TxSql } from '../db/client.ts';

/** The transaction an EVM wallet sends (API `evm.transaction`; `value` in wei, decimal). */
export type EvmTransferTx = {
  chain_id: number;
  /** The merchant's treasury on this chain, when set: the wallet expected to send it (a hint; Kassa checks what it pays, not who sends it). */
  from: `0x${string}` | null;
  to: `0x${string}`;
  value: string;
  data: `0x${string}`;
};

/** The columns a transfer keeps (the `refunds` and `payouts` tables have them all). */
export interface TransferRecord {
  id: string;
  chain: string;
  method: string;
  asset: string;
  decimals: number;
  destination: string | null;
  amount: bigint;
  /** Bitcoin: the unsigned PSBT, its unsigned txid, fee rate (sat/vB) and network fee. */
  psbt: string | null;
  unsigned_txid: string | null;
  fee_rate: string | null;
  network_fee: bigint | null;
  txid: string | null;
  /** Bitcoin: the signed transaction, recorded before it is sent. */
  raw_tx: string | null;
  /** EVM: the prepared transaction, and the reported one as checked. */
  evm_tx: EvmTransferTx | null;
  sender: string | null;
  evm_nonce: bigint | null;
  block_number: bigint | null;
  /** The output paying the destination (Bitcoin); null or absent: output 0, where Kassa's PSBT puts it. */
  output_index?: number | null;
}

/** What a transfer pays: its asset (`token` for an ERC-20, else the chain's native coin), destination and amount. */
export interface TransferTarget {
  chain: string;
  method: string;
  asset: string;
  decimals: number;
  token: string | undefined;
  destination: string;
  amount: bigint;
}

/**
 * The received outputs a Bitcoin transfer may spend: a refund spends all confirmed outputs of its
 * invoice; a payout selects among the merchant's confirmed outputs (largest first) as many as it
 * needs, leaving out the invoices that have a refund under way.
 */
export type SpendFrom = { invoiceId: string } | { anyInvoiceOf: string };

export interface PrepareRequest {
  merchantId: string;
  target: TransferTarget;
  spend: SpendFrom;
  /** Bitcoin: sat/vB as a decimal string; default the node's estimate. Refused on a family without fee rates. */
  feeRate: string | undefined;
  /** What the merchant can do when the outputs cannot pay the amount and the fee (the 422's last sentence). */
  shortfallHint: string;
}

/** What approval stores on the transfer. */
export interface PreparedTransfer {
  psbt?: string;
  unsigned_txid?: string;
  fee_rate?: string;
  network_fee?: bigint;
  evm_tx?: EvmTransferTx;
}

/** A reported transaction as checked on chain. */
export interface CheckedReport {
  txid: string;
  sender: string | null;
  evm_nonce: bigint | null;
  block_number: bigint | null;
  /** The output that pays the destination (Bitcoin). */
  output_index: number | null;
  mined: boolean;
}

/** What the node says of a recorded transfer's transaction at a tracking pass. */
export type TransferObservation =
  | { state: 'missing' }
  | { state: 'failed'; code: string; reason: string }
  | { state: 'seen'; confirmations: bigint; blockNumber: bigint | null };

/** The family's part of the API object of a refund or payout. */
export interface TransferView {
  bitcoin: { psbt: string | null; fee_rate: string | null; network_fee: string | null } | null;
  evm: { transaction: EvmTransferTx | null; link: string | null; sender: string | null; block_number: number | null } | null;
}

/** Which object the transfer is, for error codes and messages: `refund_already_broadcast`, `payout_already_broadcast`. */
export type TransferNoun = 'refund' | 'payout';

export interface MerchantSignedTransfers {
  /** How the merchant sends it: upload the signed PSBT (`psbt`), or send from the wallet and report the hash (`wallet`). */
  readonly signing: 'psbt' | 'wallet';
  /**
   * Reads what approval needs from the node and the database (no lock held), and returns the step
   * that runs in the caller's transaction (under its lock) and answers the columns to store.
   */
  prepare(req: PrepareRequest): Promise<(tx: TxSql) => Promise<PreparedTransfer>>;
  /** Checks a signed PSBT against the prepared one and finalizes it (422 naming `psbt` otherwise). */
  acceptSigned(rec: TransferRecord, signed: unknown): { txid: string; raw_tx: string };
  /**
   * Checks a transaction reported by hash: it must exist on the transfer's chain and pay exactly the
   * target (422 naming `txid` otherwise). When `rec` already has a txid, the new one is accepted only
   * as its replacement (409 `<noun>_already_broadcast` otherwise).
   */
  checkReported(rec: TransferRecord, target: TransferTarget, txid: unknown, noun: TransferNoun): Promise<CheckedReport>;
  /** Normalises a reported hash for lookups (400 `txid_invalid` naming `txid` when it is not one). */
  parseTxid(txid: unknown): string;
  /** Sends the recorded raw transaction (when there is one); `rejected` when the node refuses it for good. */
  send(rec: TransferRecord): Promise<{ rejected: string } | null>;
  /** One tracking pass: reads what it needs once (the tip), then observes each recorded transfer. */
  startPass(): Promise<(rec: TransferRecord, target: TransferTarget) => Promise<TransferObservation>>;
  /** The family's fields of the API object. */
  view(rec: TransferRecord, target: TransferTarget | null, awaitingSignature: boolean): TransferView;
}
