/**
 * Refunds (docs/refunds.md): create, claim, approve (the chain family prepares the transfer: an
 * unsigned PSBT, or the EVM transaction), accept the signed PSBT or the reported transaction
 * (record, broadcast), cancel, read. Every write runs in one transaction that first locks the
 * invoice row, so the sum rule ("never more than received per invoice and asset") sees every other
 * refund of the invoice; moves are guarded by the state table (state-machine.ts). Network calls
 * (rates, the node) happen before the transaction, never while it holds the lock. What depends on
 * the chain is the family's (src/chains/transfer.ts): this file never branches on a chain's type.
 */
import { createHash } from 'node:crypto';
import type { ChainConfig } from '../config.ts';
import type { Db, Sql, TxSql } from '../db/client.ts';
import type { Deps } from '../deps.ts';
import { conflict, invalidParam, KassaError, notFound, unprocessable } from '../errors.ts';
import { newId, randomBase62 } from '../ids.ts';
import type { Logger } from '../logger.ts';
import { formatAmount, parseAmount } from '../money/amount.ts';
import type { AssetRegistry } from '../money/assets.ts';
import { parseRate } from '../money/rate.ts';
import type { RateService } from '../rates/index.ts';
import { decryptSecret, encryptSecret } from '../crypto/secretbox.ts';
import type { BitcoinRpcClient } from '../chains/bitcoin/rpc.ts';
import { createTransferFamilies, preparedColumns, trackTransfers, type EvmTransferTx, type TransferTarget, type TransferView } from '../chains/transfers.ts';
import { pageOf, type Page } from '../api/pagination.ts';
import { checkDestination } from './destination.ts';
import { moveRefund, REFUND_TRANSITIONS, RESERVING_STATUSES, type RefundEventType, type RefundStatus } from './state-machine.ts';
import { writeEvent } from '../invoices/events.ts';
import { bookRefundSent } from './ledger.ts';

export interface RefundRow {
  id: string;
  seq: bigint;
  merchant_id: string;
  invoice_id: string;
  status: RefundStatus;
  method: string;
  chain: string;
  asset: string;
  decimals: number;
  amount_kind: 'full' | 'overpaid' | 'decimal';
  requested_amount: bigint | null;
  requested_currency: string | null;
  rate_basis: 'rate_then' | 'current' | 'fixed';
  rate: string | null;
  fee: bigint;
  amount: bigint;
  reason: string | null;
  claim_token_sealed: string;
  destination: string | null;
  claimed_at: Date | null;
  rate_locked_at: Date | null;
  approved_at: Date | null;
  psbt: string | null;
  unsigned_txid: string | null;
  fee_rate: string | null;
  network_fee: bigint | null;
  txid: string | null;
  raw_tx: string | null;
  broadcast_at: Date | null;
  completed_at: Date | null;
  cancelled_at: Date | null;
  failed_at: Date | null;
  failure_reason: string | null;
  created_at: Date;
  evm_tx: EvmTransferTx | null;
  sender: string | null;
  evm_nonce: bigint | null;
  block_number: bigint | null;
}

export interface CreateRefundInput {
  amount: unknown;
  amount_currency?: string | undefined;
  method?: string | undefined;
  rate_basis?: 'rate_then' | 'current' | 'fixed' | undefined;
  rate?: string | undefined;
  fee?: string | undefined;
  reason?: string | undefined;
}

interface InvoiceLocked {
  id: string;
  merchant_id: string;
  amount: bigint;
  amount_paid: bigint;
  currency: string;
  currency_decimals: number;
  locale: string;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();
const tokenContext = (id: string) => `refund-claim:${id}`;

/** Asset base units worth `value` currency base units at `rate` (rounded down: a refund never pays more than asked). */
export function assetAmountDown(value: bigint, currencyDecimals: number, rate: string, assetDecimals: number): bigint {
  const r = parseRate(rate);
  return (value * r.den * 10n ** BigInt(assetDecimals)) / (r.num * 10n ** BigInt(currencyDecimals));
}

export function createRefundService(deps: {
  sql: Sql;
  chains: Record<string, ChainConfig>;
  assets: AssetRegistry;
  rates: RateService;
  secretKey: Buffer;
  publicUrl: string;
  logger: Logger;
  /** The Bitcoin node for `chain` (tests may pass their own); default: the chain's configured RPC. */
  bitcoinRpc?: (chain: string) => BitcoinRpcClient;
}) {
  const { sql } = deps;
  const transfers = createTransferFamilies({ sql, chains: deps.chains, bitcoinRpc: deps.bitcoinRpc });

  /** What the refund pays (once the customer gave the destination). */
  function targetOf(r: Pick<RefundRow, 'chain' | 'method' | 'asset' | 'decimals' | 'destination' | 'amount'>): TransferTarget {
    return { chain: r.chain, method: r.method, asset: r.asset, decimals: r.decimals, token: deps.assets.method(r.method)?.token, destination: r.destination!, amount: r.amount };
  }

  /** The chain family's fields of the refund object (none for a chain no longer configured). */
  function familyView(r: RefundRow): TransferView {
    if (!deps.chains[r.chain]) return { bitcoin: null, evm: null };
    return transfers.of(r.chain).view(r, r.destination ? targetOf(r) : null, r.status === 'awaiting_signature');
  }

  function claimToken(r: Pick<RefundRow, 'id' | 'claim_token_sealed'>): string {
    return decryptSecret(deps.secretKey, r.claim_token_sealed, tokenContext(r.id));
  }

  function present(r: RefundRow) {
    const requestedDecimals = r.requested_currency ? (r.requested_currency === r.asset ? r.decimals : deps.assets.currency(r.requested_currency).decimals) : 0;
    return {
      id: r.id,
      object: 'refund' as const,
      invoice_id: r.invoice_id,
      status: r.status,
      method: r.method,
      chain: r.chain,
      asset: r.asset,
      amount: formatAmount(r.amount, r.decimals),
      fee: formatAmount(r.fee, r.decimals),
      requested: {
        kind: r.amount_kind,
        amount: r.requested_amount === null ? null : formatAmount(r.requested_amount, requestedDecimals),
        currency: r.requested_currency,
      },
      rate_basis: r.rate_basis,
      rate: r.rate,
      rate_locked_at: r.rate_locked_at?.toISOString() ?? null,
      reason: r.reason,
      claim_url: r.status === 'awaiting_destination' ? `${deps.publicUrl}/refund/${claimToken(r)}` : null,
      destination: r.destination,
      ...familyView(r),
      txid: r.txid,
      failure_reason: r.failure_reason,
      created_at: r.created_at.toISOString(),
      claimed_at: r.claimed_at?.toISOString() ?? null,
      approved_at: r.approved_at?.toISOString() ?? null,
      broadcast_at: r.broadcast_at?.toISOString() ?? null,
      completed_at: r.completed_at?.toISOString() ?? null,
      cancelled_at: r.cancelled_at?.toISOString() ?? null,
    };
  }

  /** Writes the refund's event (outbox) in the caller's transaction, with the refund as it stands now. */
  async function emit(db: Db, id: string, type: RefundEventType): Promise<void> {
    const [r] = await db<RefundRow[]>`select * from refunds where id = ${id}`;
    await writeEvent(db, { merchantId: r!.merchant_id, type, invoiceId: r!.invoice_id, object: present(r!) });
  }

  /** One guarded move (state-machine.ts) and its event, in the caller's transaction. */
  async function move(db: Db, id: string, from: RefundStatus, to: RefundStatus, set: Record<string, unknown> = {}): Promise<boolean> {
    if (!(await moveRefund(db, id, from, to, set))) return false;
    await emit(db, id, REFUND_TRANSITIONS[from][to]!);
    return true;
  }

  async function lockInvoice(tx: TxSql, merchantId: string, invoiceId: string): Promise<InvoiceLocked> {
    const [inv] = await tx<InvoiceLocked[]>`
      select id, merchant_id, amount, amount_paid, currency, currency_decimals, locale from invoices
      where id = ${invoiceId} and merchant_id = ${merchantId} for update`;
    if (!inv) throw notFound('invoice', invoiceId, 'id');
    return inv;
  }

  async function loadRefund(db: Db, merchantId: string, id: string, lock = false): Promise<RefundRow> {
    const [r] = await db<RefundRow[]>`
      select * from refunds where id = ${id} and merchant_id = ${merchantId} ${lock ? db`for update` : db``}`;
    if (!r) throw notFound('refund', id, 'id');
    return r;
  }

  /** Confirmed received (asset base units) and what other live refunds already take (gross: amount + fee). */
  async function room(tx: TxSql, invoiceId: string, method: string, exceptId: string | null): Promise<{ received: bigint; reserved: bigint }> {
    const [row] = await tx<{ received: bigint; reserved: bigint }[]>`
      select coalesce((select sum(amount) from payments where invoice_id = ${invoiceId} and method = ${method} and status = 'confirmed'), 0)::numeric as received,
             coalesce((select sum(amount + fee) from refunds where invoice_id = ${invoiceId} and method = ${method}
                        and status = any(${RESERVING_STATUSES as string[]}) and id <> ${exceptId ?? ''}), 0)::numeric as reserved`;
    return { received: BigInt(row!.received), reserved: BigInt(row!.reserved) };
  }

  interface Terms {
    kind: 'full' | 'overpaid' | 'decimal';
    requested: { amount: bigint; currency: string } | null;
    basis: 'rate_then' | 'current' | 'fixed';
    fee: bigint;
  }

  /** The gross refund (asset base units) for these terms, or throws 422 naming `amount`. */
  function grossFor(t: Terms, inv: InvoiceLocked, asset: { symbol: string; decimals: number }, rate: string | null, left: bigint): bigint {
    if (t.kind === 'full') {
      if (left <= 0n) throw unprocessable('nothing_left_to_refund', `Everything invoice ${inv.id} received in ${asset.symbol} is already taken by other refunds.`, 'amount');
      return left;
    }
    let value: bigint; // in the invoice currency
    if (t.kind === 'overpaid') {
      if (inv.amount_paid <= inv.amount) throw unprocessable('invoice_not_overpaid', `Invoice ${inv.id} is not overpaid: ${formatAmount(inv.amount_paid, inv.currency_decimals)} ${inv.currency} received for a price of ${formatAmount(inv.amount, inv.currency_decimals)}.`, 'amount');
      value = inv.amount_paid - inv.amount;
    } else {
      if (t.requested!.currency === asset.symbol) return t.requested!.amount;
      value = t.requested!.amount;
    }
    if (inv.currency === asset.symbol) return value; // an invoice priced in the asset itself
    return assetAmountDown(value, inv.currency_decimals, rate!, asset.decimals);
  }

  /** Checks the sum rule and the fee; returns the net amount. */
  function checkRoom(gross: bigint, fee: bigint, left: bigint, asset: { symbol: string; decimals: number }, received: bigint): bigint {
    if (gross <= 0n) throw unprocessable('refund_amount_zero', 'This refund converts to nothing in the asset: choose a larger amount.', 'amount');
    if (gross > left) {
      throw unprocessable('refund_exceeds_received',
        `A refund of ${formatAmount(gross, asset.decimals)} ${asset.symbol} is more than is left to refund on this invoice: ${formatAmount(left, asset.decimals)} ${asset.symbol} (received ${formatAmount(received, asset.decimals)} ${asset.symbol}, minus other refunds).`, 'amount');
    }
    if (fee >= gross) throw unprocessable('fee_too_large', `The fee (${formatAmount(fee, asset.decimals)} ${asset.symbol}) must be smaller than the refund (${formatAmount(gross, asset.decimals)} ${asset.symbol}).`, 'fee');
    return gross - fee;
  }

  async function rateFor(basis: Terms['basis'], inv: { id: string; currency: string }, method: string, symbol: string, fixed: string | undefined): Promise<string | null> {
    if (inv.currency === symbol) return null;
    if (basis === 'fixed') return fixed!;
    if (basis === 'current') return (await deps.rates.rate(symbol, inv.currency)).rate;
    const [m] = await sql<{ rate: string }[]>`select rate from invoice_payment_methods where invoice_id = ${inv.id} and method = ${method}`;
    if (!m) throw unprocessable('rate_then_unavailable', `The invoice did not offer ${method}, so it has no locked rate for it: use rate_basis "current" or "fixed".`, 'rate_basis');
    return m.rate;
  }

  return {
    present,

    async create(merchantId: string, invoiceId: string, input: CreateRefundInput) {
      // Reads and validation first (no lock): the invoice, the method, the terms.
      const [inv] = await sql<InvoiceLocked[]>`
        select id, merchant_id, amount, amount_paid, currency, currency_decimals, locale from invoices where id = ${invoiceId} and merchant_id = ${merchantId}`;
      if (!inv) throw notFound('invoice', invoiceId, 'id');
      const paidWith = await sql<{ method: string }[]>`
        select distinct method from payments where invoice_id = ${invoiceId} and status = 'confirmed' order by method`;
      let method = input.method;
      if (method === undefined) {
        if (paidWith.length === 0) throw unprocessable('nothing_received', `Invoice ${invoiceId} has no confirmed payment to refund.`, 'id');
        if (paidWith.length > 1) throw invalidParam('method', `The customer paid with ${paidWith.map((p) => p.method).join(' and ')}: name the one to refund in "method".`, 'method_required');
        method = paidWith[0]!.method;
      }
      const asset = deps.assets.method(method);
      if (!asset) throw invalidParam('method', `Unknown payment method "${method}".`, 'method_invalid');
      if (!paidWith.some((p) => p.method === method)) {
        throw unprocessable('method_not_paid', `Invoice ${invoiceId} received no confirmed payment in ${method}${paidWith.length ? ` (it was paid with ${paidWith.map((p) => p.method).join(' and ')})` : ''}: a refund pays back in what was received.`, 'method');
      }

      let kind: Terms['kind'];
      let requested: Terms['requested'] = null;
      if (input.amount === 'full' || input.amount === 'overpaid') kind = input.amount;
      else {
        kind = 'decimal';
        const currency = input.amount_currency ?? inv.currency;
        if (currency !== inv.currency && currency !== asset.symbol) {
          throw invalidParam('amount_currency', `amount_currency must be the invoice's currency (${inv.currency}) or the refunded asset (${asset.symbol}).`, 'amount_currency_invalid');
        }
        const decimals = currency === asset.symbol ? asset.decimals : inv.currency_decimals;
        requested = { amount: parseAmount(input.amount, decimals, { param: 'amount', unit: currency }), currency };
      }
      if (input.amount_currency !== undefined && kind !== 'decimal') throw invalidParam('amount_currency', 'amount_currency applies only to a decimal amount.', 'parameter_invalid');
      const basis = input.rate_basis ?? 'rate_then';
      if (basis === 'fixed') {
        if (input.rate === undefined) throw invalidParam('rate', 'rate_basis "fixed" needs "rate": the price of one unit of the asset in the invoice currency, e.g. "60000.00".', 'parameter_missing');
        if (typeof input.rate !== 'string' || !/^(0|[1-9][0-9]{0,30})(\.[0-9]{1,18})?$/.test(input.rate) || !/[1-9]/.test(input.rate)) {
          throw invalidParam('rate', 'rate must be a positive decimal string such as "60000.00".', 'rate_invalid');
        }
      } else if (input.rate !== undefined) throw invalidParam('rate', 'rate applies only with rate_basis "fixed".', 'parameter_invalid');
      const fee = input.fee === undefined ? 0n : parseAmount(input.fee, asset.decimals, { param: 'fee', unit: asset.symbol, allowZero: true });
      const terms: Terms = { kind, requested, basis, fee };
      const needsRate = kind === 'overpaid' || (kind === 'decimal' && requested!.currency !== asset.symbol);
      const rate = needsRate ? await rateFor(basis, inv, method, asset.symbol, input.rate) : (basis === 'fixed' ? input.rate! : null);

      const id = newId('ref');
      const token = randomBase62(32);
      const row = await sql.begin(async (tx) => {
        const locked = await lockInvoice(tx, merchantId, invoiceId);
        const { received, reserved } = await room(tx, invoiceId, method, null);
        const left = received - reserved;
        const gross = grossFor(terms, locked, asset, rate, left);
        const net = checkRoom(gross, fee, left, asset, received);
        const [r] = await tx<RefundRow[]>`
          insert into refunds (id, merchant_id, invoice_id, method, chain, asset, decimals, amount_kind, requested_amount, requested_currency,
                               rate_basis, rate, fee, amount, reason, claim_token_hash, claim_token_sealed)
          values (${id}, ${merchantId}, ${invoiceId}, ${method}, ${asset.chain}, ${asset.symbol}, ${asset.decimals}, ${kind},
                  ${requested?.amount ?? null}, ${requested?.currency ?? null}, ${basis}, ${rate}, ${fee}, ${net}, ${input.reason ?? null},
                  ${sha256(token)}, ${encryptSecret(deps.secretKey, token, tokenContext(id))})
          returning *`;
        await emit(tx, id, 'refund.created');
        return r!;
      });
      deps.logger.info({ refund_id: id, invoice_id: invoiceId, method, amount: row.amount.toString() }, 'refund created');
      return present(row);
    },

    async get(merchantId: string, id: string) {
      return present(await loadRefund(sql, merchantId, id));
    },

    async seqOf(merchantId: string, id: string): Promise<bigint | undefined> {
      return (await sql<{ seq: bigint }[]>`select seq from refunds where id = ${id} and merchant_id = ${merchantId}`)[0]?.seq;
    },

    async list(merchantId: string, filter: { invoiceId?: string | undefined; status?: RefundStatus | undefined }, page: Page) {
      const rows = await sql<RefundRow[]>`
        select * from refunds where merchant_id = ${merchantId}
          ${filter.invoiceId ? sql`and invoice_id = ${filter.invoiceId}` : sql``}
          ${filter.status ? sql`and status = ${filter.status}` : sql``}
          ${page.afterSeq !== undefined ? sql`and seq < ${page.afterSeq}` : sql``}
          ${page.beforeSeq !== undefined ? sql`and seq > ${page.beforeSeq}` : sql``}
        order by seq ${page.beforeSeq !== undefined ? sql`asc` : sql`desc`} limit ${page.limit + 1}`;
      const { data, hasMore } = pageOf(rows, page);
      return { data: data.map(present), hasMore };
    },

    async cancel(merchantId: string, id: string) {
      const row = await sql.begin(async (tx) => {
        const r = await loadRefund(tx, merchantId, id, true);
        if (r.status === 'cancelled') return r; // a repeated cancel changes nothing
        await move(tx, id, r.status, 'cancelled', { cancelled_at: new Date() });
        return loadRefund(tx, merchantId, id);
      });
      return present(row);
    },

    /** The claim page's view of a refund, by its token; null when the token is unknown. */
    async byToken(token: string) {
      if (!/^[0-9A-Za-z]{32}$/.test(token)) return null;
      const [r] = await sql<(RefundRow & { merchant_name: string; locale: string; invoice_currency: string })[]>`
        select r.*, m.name as merchant_name, i.locale, i.currency as invoice_currency
        from refunds r join merchants m on m.id = r.merchant_id join invoices i on i.id = r.invoice_id
        where r.claim_token_hash = ${sha256(token)}`;
      if (!r) return null;
      const chain = deps.chains[r.chain];
      return {
        id: r.id, status: r.status, merchant_name: r.merchant_name, locale: r.locale, asset: r.asset, chain: r.chain,
        network: chain?.network ?? 'unknown', chain_type: chain?.type ?? 'bitcoin',
        amount: formatAmount(r.amount, r.decimals), rate_basis: r.rate_basis, destination: r.destination,
      };
    },

    /**
     * The customer's claim: checks the destination for the refund's chain and network, locks the
     * rate (a `current` basis takes the rate of this moment) and the amount, → awaiting_approval.
     */
    async claim(token: string, rawDestination: unknown) {
      const view = await this.byToken(token);
      if (!view) throw notFound('refund claim');
      const [r0] = await sql<RefundRow[]>`select * from refunds where id = ${view.id}`;
      const r = r0!;
      if (r.status !== 'awaiting_destination') throw conflict('refund_already_claimed', 'This refund was already claimed or is closed.');
      const chain = deps.chains[r.chain]!;
      const dest = checkDestination(rawDestination, chain);
      const own = await sql`select 1 from deposit_addresses where chain = ${r.chain} and lower(address) = ${dest.address.toLowerCase()} limit 1`;
      if (own.length) throw invalidParam('destination', 'This is a payment address of the shop, not your own: enter an address of your wallet.', 'destination_is_deposit_address');
      const [inv] = await sql<InvoiceLocked[]>`select id, merchant_id, amount, amount_paid, currency, currency_decimals, locale from invoices where id = ${r.invoice_id}`;
      const needsRate = r.amount_kind === 'overpaid' || (r.amount_kind === 'decimal' && r.requested_currency !== r.asset);
      const rate = needsRate && r.rate_basis === 'current' ? await rateFor('current', inv!, r.method, r.asset, undefined) : r.rate;
      const row = await sql.begin(async (tx) => {
        const locked = await lockInvoice(tx, r.merchant_id, r.invoice_id);
        const cur = await loadRefund(tx, r.merchant_id, r.id, true);
        if (cur.status !== 'awaiting_destination') throw conflict('refund_already_claimed', 'This refund was already claimed or is closed.');
        const { received, reserved } = await room(tx, r.invoice_id, r.method, r.id);
        const left = received - reserved;
        const terms: Terms = {
          kind: r.amount_kind, basis: r.rate_basis, fee: r.fee,
          requested: r.requested_amount !== null ? { amount: r.requested_amount, currency: r.requested_currency! } : null,
        };
        const asset = { symbol: r.asset, decimals: r.decimals };
        // `full` keeps the amount set at creation: it was everything left then, and other refunds cannot have taken it since.
        const gross = r.amount_kind === 'full' ? r.amount + r.fee : grossFor(terms, locked, asset, rate, left);
        const net = checkRoom(gross, r.fee, left, asset, received);
        await move(tx, r.id, 'awaiting_destination', 'awaiting_approval', {
          destination: dest.address, claimed_at: new Date(), rate, rate_locked_at: new Date(), amount: net,
        });
        return loadRefund(tx, r.merchant_id, r.id);
      });
      deps.logger.info({ refund_id: r.id }, 'refund claimed');
      return row;
    },

    /**
     * The merchant approves: the chain family prepares the transfer (Bitcoin: the unsigned PSBT
     * over the invoice's unspent outputs, fee rate from `fee_rate` or the node's `estimatesmartfee`;
     * EVM: the transaction the wallet sends), → awaiting_signature. At most one refund per invoice
     * awaits a signature.
     */
    async approve(merchantId: string, id: string, opts: { fee_rate?: string | undefined } = {}) {
      const r = await loadRefund(sql, merchantId, id);
      if (r.status !== 'awaiting_approval') {
        throw conflict('refund_state_invalid', r.status === 'awaiting_destination'
          ? `Refund ${id} has no destination yet: the customer has not claimed it (claim_url).`
          : `Refund ${id} is ${r.status}; only a refund awaiting approval can be approved.`);
      }
      const prepare = await transfers.of(r.chain).prepare({
        merchantId, target: targetOf(r), spend: { invoiceId: r.invoice_id }, feeRate: opts.fee_rate,
        shortfallHint: 'Create the refund with a "fee" to deduct from it, or a smaller amount.',
      });
      const row = await sql.begin(async (tx) => {
        await lockInvoice(tx, merchantId, r.invoice_id);
        const cur = await loadRefund(tx, merchantId, id, true);
        if (cur.status !== 'awaiting_approval') throw conflict('refund_state_invalid', `Refund ${id} is ${cur.status}; only a refund awaiting approval can be approved.`);
        const busy = await tx<{ id: string }[]>`select id from refunds where invoice_id = ${r.invoice_id} and status = 'awaiting_signature'`;
        if (busy.length) throw conflict('refund_awaiting_signature_exists', `Refund ${busy[0]!.id} of this invoice is already awaiting a signature: broadcast or cancel it first.`);
        const prepared = await prepare(tx);
        try {
          await move(tx, id, 'awaiting_approval', 'awaiting_signature', { approved_at: new Date(), ...preparedColumns(tx, prepared) });
        } catch (err) {
          if ((err as { code?: string }).code === '23505') throw conflict('refund_awaiting_signature_exists', 'Another refund of this invoice is already awaiting a signature: broadcast or cancel it first.');
          throw err;
        }
        return loadRefund(tx, merchantId, id);
      });
      deps.logger.info({ refund_id: id, unsigned_txid: row.unsigned_txid, to: row.evm_tx?.to }, 'refund approved, transfer prepared');
      return present(row);
    },

    /**
     * The merchant's signed PSBT: checked against the refund's own, finalized, recorded
     * (→ broadcast, ledger) in one transaction, then sent to the node. The same upload again
     * re-sends the recorded transaction and changes nothing else.
     */
    async submitSignedPsbt(merchantId: string, id: string, signed: unknown) {
      const r = await loadRefund(sql, merchantId, id);
      if (r.status !== 'awaiting_signature' && r.status !== 'broadcast') {
        throw conflict('refund_state_invalid', `Refund ${id} is ${r.status}; a signed PSBT is accepted only while it awaits a signature.`);
      }
      const final = transfers.of(r.chain).acceptSigned(r, signed);
      if (r.status === 'awaiting_signature') {
        await sql.begin(async (tx) => {
          await lockInvoice(tx, merchantId, r.invoice_id);
          const cur = await loadRefund(tx, merchantId, id, true);
          if (cur.status !== 'awaiting_signature') return; // recorded by a concurrent upload: fall through to re-send
          await move(tx, id, 'awaiting_signature', 'broadcast', { txid: final.txid, raw_tx: final.raw_tx, broadcast_at: new Date() });
          await bookRefundSent(tx, { ...cur, network_fee: cur.network_fee ?? 0n });
        });
      }
      const recorded = await loadRefund(sql, merchantId, id);
      if (recorded.txid !== final.txid) {
        throw conflict('refund_already_broadcast', `Refund ${id} was already broadcast as ${recorded.txid}; this PSBT makes another transaction.`);
      }
      await sendRecorded(recorded);
      return present(await loadRefund(sql, merchantId, id));
    },

    /**
     * The merchant reports the hash of the transaction their wallet sent (EVM; on Bitcoin instead of
     * uploading the signed PSBT, e.g. after broadcasting it from their own wallet or paying from
     * another of their wallets). The chain family reads it from the refund's chain and checks it (right
     * chain, asset, destination and amount; not reverted); a transaction that fails the check is
     * refused with a 422 naming `txid` and changes nothing. One that passes is recorded
     * (→ broadcast, ledger) in one transaction; the tracker completes it at the invoice's
     * confirmation policy. Reporting the same hash again changes nothing; another hash is accepted
     * only as a replacement of the recorded one (same sender and nonce, the recorded one not
     * mined), so at most one can pay.
     */
    async submitTransaction(merchantId: string, id: string, rawTxid: unknown) {
      const r = await loadRefund(sql, merchantId, id);
      const family = transfers.of(r.chain);
      const txid = family.parseTxid(rawTxid);
      if (r.status !== 'awaiting_signature' && r.status !== 'broadcast' && r.status !== 'completed') {
        throw conflict('refund_state_invalid', `Refund ${id} is ${r.status}; a transaction is accepted only after approval (awaiting_signature).`);
      }
      if (r.txid === txid) return present(r); // reported again: nothing changes
      if (r.status === 'completed') throw conflict('refund_already_broadcast', `Refund ${id} was already paid by ${r.txid}.`, 'txid');
      const used = await sql<{ id: string }[]>`select id from refunds where chain = ${r.chain} and txid = ${txid}`;
      if (used.length) throw conflict('transaction_already_used', `Transaction ${txid} is already recorded for refund ${used[0]!.id}: one transaction pays one refund.`, 'txid');

      const check = await family.checkReported(r, targetOf(r), txid, 'refund');
      try {
        await sql.begin(async (tx) => {
          await lockInvoice(tx, merchantId, r.invoice_id);
          const cur = await loadRefund(tx, merchantId, id, true);
          const recorded = { txid, sender: check.sender, evm_nonce: check.evm_nonce, block_number: check.block_number };
          if (cur.status === 'awaiting_signature') {
            // Bitcoin: the fee Kassa's PSBT pays is known only when the reported transaction is that
            // PSBT's; one the merchant's wallet built itself records no network fee (docs/refunds.md).
            const networkFee = cur.unsigned_txid === null || cur.unsigned_txid === txid ? cur.network_fee : null;
            await move(tx, id, 'awaiting_signature', 'broadcast', { ...recorded, network_fee: networkFee, broadcast_at: new Date() });
            await bookRefundSent(tx, { ...cur, network_fee: networkFee ?? 0n });
          } else if (cur.status === 'broadcast' && cur.txid === r.txid) {
            await tx`update refunds set txid = ${txid}, block_number = ${recorded.block_number}, updated_at = now() where id = ${id} and status = 'broadcast'`;
            await emit(tx, id, 'refund.broadcast');
          } else if (cur.txid !== txid) {
            throw conflict('refund_state_invalid', `Refund ${id} changed while this transaction was checked (now ${cur.status}); read it again.`);
          }
        });
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw conflict('transaction_already_used', `Transaction ${txid} is already recorded for another refund: one transaction pays one refund.`, 'txid');
        throw err;
      }
      deps.logger.info({ refund_id: id, txid, mined: check.mined }, 'refund transaction reported and checked');
      return present(await loadRefund(sql, merchantId, id));
    },

    /**
     * Follows the refunds of `chain` that were broadcast (and those completed within the last
     * day, for reorgs), by the chain family's observations (`trackTransfers`): `completed` at the
     * confirmations the invoice's method requires, back to `broadcast` when a reorg takes it below
     * that, `failed` (postings reversed) when the chain shows a transaction that does not pay the
     * refund, and a recorded transaction the node lost is sent again.
     */
    async track(chain: string): Promise<{ completed: number; reorged: number; resent: number; failed: number }> {
      if (!deps.chains[chain]) return { completed: 0, reorged: 0, resent: 0, failed: 0 };
      const rows = await sql<(RefundRow & { required: number })[]>`
        select r.*, coalesce(m.confirmations_required, 1) as required from refunds r
        left join invoice_payment_methods m on m.invoice_id = r.invoice_id and m.method = r.method
        where r.chain = ${chain} and (r.status = 'broadcast' or (r.status = 'completed' and r.completed_at > now() - interval '1 day'))
        order by r.seq limit 500`;
      return trackTransfers({
        chain, family: transfers.of(chain), rows, targetOf, logger: deps.logger, noun: 'refund',
        complete: (r, blockNumber) => sql.begin((tx) => move(tx, r.id, 'broadcast', 'completed', { completed_at: new Date(), block_number: blockNumber })),
        reorg: (r, blockNumber) => sql.begin((tx) => move(tx, r.id, 'completed', 'broadcast', { completed_at: null, block_number: blockNumber })),
        fail: (r, reason) => sql.begin(async (tx) => {
          await tx`select id from invoices where id = ${r.invoice_id} for update`;
          if (r.status === 'completed') await move(tx, r.id, 'completed', 'broadcast', { completed_at: null });
          if (!(await move(tx, r.id, 'broadcast', 'failed', { failed_at: new Date(), failure_reason: reason.slice(0, 500) }))) return false;
          await bookRefundSent(tx, { ...r, network_fee: r.network_fee ?? 0n }, { reverse: true });
          return true;
        }),
        resend: sendRecorded,
      });
    },
  };

  /** Sends the recorded raw transaction; a definite refusal by the node moves the refund to failed. */
  async function sendRecorded(r: RefundRow): Promise<void> {
    const refused = await transfers.of(r.chain).send(r);
    if (!refused) return;
    await sql.begin(async (tx) => {
      await tx`select id from invoices where id = ${r.invoice_id} for update`;
      if (await move(tx, r.id, 'broadcast', 'failed', { failed_at: new Date(), failure_reason: refused.rejected.slice(0, 500) })) {
        await bookRefundSent(tx, { ...r, network_fee: r.network_fee ?? 0n }, { reverse: true });
      }
    });
    throw new KassaError('refund_broadcast_rejected', `The Bitcoin node refused the refund transaction: ${refused.rejected}. The refund is failed; create a new one.`, { status: 422, retryable: false });
  }
}

export type RefundService = ReturnType<typeof createRefundService>;

/** The refund service of a process (the API and the maintenance worker build it the same way). */
export function refundServiceFor(deps: Pick<Deps, 'sql' | 'config' | 'assets' | 'rates' | 'logger'>): RefundService {
  return createRefundService({
    sql: deps.sql, chains: deps.config.chains, assets: deps.assets, rates: deps.rates, secretKey: deps.config.secretKey,
    publicUrl: deps.config.publicUrl, logger: deps.logger,
  });
}
export type RefundObject = ReturnType<RefundService['present']>;
