/**
 * Payouts (docs/refunds.md, "Payouts"): the refund machinery without an invoice, so finance staff
 * can pay suppliers from the same place. Create (chain, asset, amount, destination) → approve (the
 * chain family prepares the transfer: an unsigned PSBT over the merchant's own unspent received
 * outputs, or the EVM transaction from the treasury) → the merchant's wallet signs it: upload the
 * signed PSBT (Kassa checks, records, broadcasts), or report the txid of what the wallet sent
 * (Kassa checks it on chain) → completed at the chain's confirmation policy; a reorg moves it back.
 * Moves are guarded by the state table (state-machine.ts), each writes its `payout.*` event in the
 * same transaction; node calls happen before the transaction. Like the refund service, this file
 * never branches on a chain's type (src/chains/transfer.ts).
 */
import type { ChainConfig } from '../config.ts';
import type { Db, Sql } from '../db/client.ts';
import type { Deps } from '../deps.ts';
import { conflict, invalidParam, KassaError, notFound } from '../errors.ts';
import { newId } from '../ids.ts';
import type { Logger } from '../logger.ts';
import { formatAmount, parseAmount } from '../money/amount.ts';
import type { AssetRegistry, CryptoAsset } from '../money/assets.ts';
import type { SpeedPolicy } from '../merchants/service.ts';
import type { BitcoinRpcClient } from '../chains/bitcoin/rpc.ts';
import { chainFamily } from '../chains/families.ts';
import { createTransferFamilies, preparedColumns, trackTransfers, type EvmTransferTx, type TransferTarget } from '../chains/transfers.ts';
import { pageOf, type Page } from '../api/pagination.ts';
import { writeEvent } from '../invoices/events.ts';
import { checkDestination } from '../refunds/destination.ts';
import { bookPayoutSent } from '../refunds/ledger.ts';
import { movePayout, PAYOUT_TRANSITIONS, type PayoutEventType, type PayoutStatus } from './state-machine.ts';

export interface PayoutRow {
  id: string;
  seq: bigint;
  merchant_id: string;
  status: PayoutStatus;
  method: string;
  chain: string;
  asset: string;
  decimals: number;
  amount: bigint;
  destination: string;
  reference: string | null;
  description: string | null;
  confirmations_required: number;
  approved_at: Date | null;
  psbt: string | null;
  unsigned_txid: string | null;
  fee_rate: string | null;
  network_fee: bigint | null;
  txid: string | null;
  raw_tx: string | null;
  output_index: number | null;
  evm_tx: EvmTransferTx | null;
  sender: string | null;
  evm_nonce: bigint | null;
  block_number: bigint | null;
  broadcast_at: Date | null;
  completed_at: Date | null;
  cancelled_at: Date | null;
  failed_at: Date | null;
  failure_reason: string | null;
  created_at: Date;
}

export interface CreatePayoutInput {
  chain: string;
  asset: string;
  amount: unknown;
  destination: string;
  reference?: string | undefined;
  description?: string | undefined;
}

export function createPayoutService(deps: {
  sql: Sql;
  chains: Record<string, ChainConfig>;
  assets: AssetRegistry;
  logger: Logger;
  /** The Bitcoin node for `chain` (tests may pass their own); default: the chain's configured RPC. */
  bitcoinRpc?: (chain: string) => BitcoinRpcClient;
}) {
  const { sql } = deps;
  const transfers = createTransferFamilies({ sql, chains: deps.chains, bitcoinRpc: deps.bitcoinRpc });

  const targetOf = (p: PayoutRow): TransferTarget => ({
    chain: p.chain, method: p.method, asset: p.asset, decimals: p.decimals, token: deps.assets.method(p.method)?.token, destination: p.destination, amount: p.amount,
  });

  function present(p: PayoutRow) {
    const family = deps.chains[p.chain] ? transfers.of(p.chain).view(p, targetOf(p), p.status === 'awaiting_signature') : { bitcoin: null, evm: null };
    return {
      id: p.id,
      object: 'payout' as const,
      status: p.status,
      chain: p.chain,
      asset: p.asset,
      method: p.method,
      amount: formatAmount(p.amount, p.decimals),
      destination: p.destination,
      reference: p.reference,
      description: p.description,
      confirmations_required: p.confirmations_required,
      ...family,
      txid: p.txid,
      failure_reason: p.failure_reason,
      created_at: p.created_at.toISOString(),
      approved_at: p.approved_at?.toISOString() ?? null,
      broadcast_at: p.broadcast_at?.toISOString() ?? null,
      completed_at: p.completed_at?.toISOString() ?? null,
      cancelled_at: p.cancelled_at?.toISOString() ?? null,
    };
  }

  async function emit(db: Db, id: string, type: PayoutEventType): Promise<void> {
    const [p] = await db<PayoutRow[]>`select * from payouts where id = ${id}`;
    await writeEvent(db, { merchantId: p!.merchant_id, type, invoiceId: null, object: present(p!) });
  }

  async function move(db: Db, id: string, from: PayoutStatus, to: PayoutStatus, set: Record<string, unknown> = {}): Promise<boolean> {
    if (!(await movePayout(db, id, from, to, set))) return false;
    await emit(db, id, PAYOUT_TRANSITIONS[from][to]!);
    return true;
  }

  async function load(db: Db, merchantId: string, id: string, lock = false): Promise<PayoutRow> {
    const [p] = await db<PayoutRow[]>`select * from payouts where id = ${id} and merchant_id = ${merchantId} ${lock ? db`for update` : db``}`;
    if (!p) throw notFound('payout', id, 'id');
    return p;
  }

  /** The method of `asset` on `chain` (400 naming the field otherwise). */
  function methodOf(chain: string, asset: string): CryptoAsset {
    if (!deps.chains[chain]) {
      throw invalidParam('chain', `Unknown chain "${chain}": use one of ${Object.keys(deps.chains).join(', ') || '(none configured)'}.`, 'chain_invalid');
    }
    const m = deps.assets.methods().find((a) => a.chain === chain && a.symbol === asset);
    if (!m) {
      const offered = deps.assets.methods().filter((a) => a.chain === chain).map((a) => a.symbol);
      throw invalidParam('asset', `Chain "${chain}" has no asset "${asset}": use one of ${offered.join(', ')}.`, 'asset_invalid');
    }
    return m;
  }

  /** Sends the recorded raw transaction (if Kassa holds one); a definite refusal by the node fails the payout. */
  async function sendRecorded(p: PayoutRow): Promise<void> {
    const refused = await transfers.of(p.chain).send(p);
    if (!refused) return;
    await sql.begin(async (tx) => {
      if (await move(tx, p.id, 'broadcast', 'failed', { failed_at: new Date(), failure_reason: refused.rejected.slice(0, 500) })) {
        await bookPayoutSent(tx, { ...p, network_fee: p.network_fee ?? 0n }, { reverse: true });
      }
    });
    throw new KassaError('payout_broadcast_rejected', `The node refused the payout transaction: ${refused.rejected}. The payout is failed; create a new one.`, { status: 422, retryable: false });
  }

  /** 409 when a refund or another payout already recorded this transaction. */
  async function assertTxidUnused(chain: string, txid: string, id: string): Promise<void> {
    const [used] = await sql<{ id: string }[]>`
      select id from payouts where chain = ${chain} and txid = ${txid} and id <> ${id}
      union all select id from refunds where chain = ${chain} and txid = ${txid} limit 1`;
    if (used) throw conflict('transaction_already_used', `Transaction ${txid} is already recorded for ${used.id}: one transaction pays one payout or refund.`, 'txid');
  }

  return {
    present,

    async create(merchantId: string, input: CreatePayoutInput) {
      const m = methodOf(input.chain, input.asset);
      const cfg = deps.chains[m.chain]!;
      const amount = parseAmount(input.amount, m.decimals, { param: 'amount', unit: m.symbol });
      const dest = checkDestination(input.destination, cfg);
      const own = await sql`select 1 from deposit_addresses where chain = ${m.chain} and lower(address) = ${dest.address.toLowerCase()} limit 1`;
      if (own.length) throw invalidParam('destination', 'This is one of your own deposit addresses: a payout goes to someone else\'s address.', 'destination_is_deposit_address');
      const [merchant] = await sql<{ default_speed_policy: SpeedPolicy }[]>`select default_speed_policy from merchants where id = ${merchantId}`;
      const required = Math.max(1, chainFamily(cfg).confirmations(merchant!.default_speed_policy));
      const id = newId('po');
      const row = await sql.begin(async (tx) => {
        const [p] = await tx<PayoutRow[]>`
          insert into payouts (id, merchant_id, method, chain, asset, decimals, amount, destination, reference, description, confirmations_required)
          values (${id}, ${merchantId}, ${m.method}, ${m.chain}, ${m.symbol}, ${m.decimals}, ${amount}, ${dest.address},
                  ${input.reference ?? null}, ${input.description ?? null}, ${required})
          returning *`;
        await emit(tx, id, 'payout.created');
        return p!;
      });
      deps.logger.info({ payout_id: id, method: m.method, amount: amount.toString() }, 'payout created');
      return present(row);
    },

    async get(merchantId: string, id: string) {
      return present(await load(sql, merchantId, id));
    },

    async seqOf(merchantId: string, id: string): Promise<bigint | undefined> {
      return (await sql<{ seq: bigint }[]>`select seq from payouts where id = ${id} and merchant_id = ${merchantId}`)[0]?.seq;
    },

    async list(merchantId: string, filter: { status?: PayoutStatus | undefined; chain?: string | undefined }, page: Page) {
      const rows = await sql<PayoutRow[]>`
        select * from payouts where merchant_id = ${merchantId}
          ${filter.status ? sql`and status = ${filter.status}` : sql``}
          ${filter.chain ? sql`and chain = ${filter.chain}` : sql``}
          ${page.afterSeq !== undefined ? sql`and seq < ${page.afterSeq}` : sql``}
          ${page.beforeSeq !== undefined ? sql`and seq > ${page.beforeSeq}` : sql``}
        order by seq ${page.beforeSeq !== undefined ? sql`asc` : sql`desc`} limit ${page.limit + 1}`;
      const { data, hasMore } = pageOf(rows, page);
      return { data: data.map(present), hasMore };
    },

    async cancel(merchantId: string, id: string) {
      const row = await sql.begin(async (tx) => {
        const p = await load(tx, merchantId, id, true);
        if (p.status === 'cancelled') return p; // a repeated cancel changes nothing
        await move(tx, id, p.status, 'cancelled', { cancelled_at: new Date() });
        return load(tx, merchantId, id);
      });
      return present(row);
    },

    /**
     * Approval: the chain family prepares the transfer (Bitcoin: the unsigned PSBT over the
     * merchant's unspent received outputs, largest first, fee rate from `fee_rate` or the node's
     * `estimatesmartfee`; EVM: the transaction the treasury's wallet sends), → awaiting_signature.
     */
    async approve(merchantId: string, id: string, opts: { fee_rate?: string | undefined } = {}) {
      const p = await load(sql, merchantId, id);
      if (p.status !== 'awaiting_approval') throw conflict('payout_state_invalid', `Payout ${id} is ${p.status}; only a payout awaiting approval can be approved.`);
      const prepare = await transfers.of(p.chain).prepare({
        merchantId, target: targetOf(p), spend: { anyInvoiceOf: merchantId }, feeRate: opts.fee_rate,
        shortfallHint: 'Pay a smaller amount, or wait until more payments have confirmed.',
      });
      const row = await sql.begin(async (tx) => {
        const cur = await load(tx, merchantId, id, true);
        if (cur.status !== 'awaiting_approval') throw conflict('payout_state_invalid', `Payout ${id} is ${cur.status}; only a payout awaiting approval can be approved.`);
        const prepared = await prepare(tx);
        try {
          await move(tx, id, 'awaiting_approval', 'awaiting_signature', { approved_at: new Date(), ...preparedColumns(tx, prepared) });
        } catch (err) {
          if ((err as { code?: string }).code === '23505') throw conflict('payout_awaiting_signature_exists', `Another ${p.chain} payout's PSBT is awaiting a signature: broadcast or cancel it first (both would spend the same outputs).`);
          throw err;
        }
        return load(tx, merchantId, id);
      });
      deps.logger.info({ payout_id: id, unsigned_txid: row.unsigned_txid, to: row.evm_tx?.to }, 'payout approved, transfer prepared');
      return present(row);
    },

    /**
     * The signed PSBT: checked against the payout's own (it spends only the outputs Kassa chose and
     * pays the destination the amount), finalized, recorded (→ broadcast, ledger) in one
     * transaction, then sent. Uploading it again re-sends the recorded transaction.
     */
    async submitSignedPsbt(merchantId: string, id: string, signed: unknown) {
      const p = await load(sql, merchantId, id);
      if (p.status !== 'awaiting_signature' && p.status !== 'broadcast') {
        throw conflict('payout_state_invalid', `Payout ${id} is ${p.status}; a signed PSBT is accepted only while it awaits a signature.`);
      }
      const final = transfers.of(p.chain).acceptSigned(p, signed);
      if (p.status === 'awaiting_signature') {
        await sql.begin(async (tx) => {
          const cur = await load(tx, merchantId, id, true);
          if (cur.status !== 'awaiting_signature') return; // recorded by a concurrent upload: fall through to re-send
          await move(tx, id, 'awaiting_signature', 'broadcast', { txid: final.txid, raw_tx: final.raw_tx, output_index: 0, broadcast_at: new Date() });
          await bookPayoutSent(tx, { ...cur, network_fee: cur.network_fee ?? 0n });
        });
      }
      const recorded = await load(sql, merchantId, id);
      if (recorded.txid !== final.txid) throw conflict('payout_already_broadcast', `Payout ${id} was already broadcast as ${recorded.txid}; this PSBT makes another transaction.`);
      await sendRecorded(recorded);
      return present(await load(sql, merchantId, id));
    },

    /**
     * The txid of the transaction the merchant's wallet sent (either family). The chain family
     * checks on chain that it pays the destination exactly the amount (422 naming `txid`
     * otherwise); it is recorded (→ broadcast, ledger) and tracked to its confirmations. Reporting
     * the same txid again changes nothing; on EVM another one is accepted only as a replacement
     * (same sender and nonce) of one not mined yet. The network fee is booked only when the
     * transaction is Kassa's own PSBT (same txid: segwit signatures do not change it).
     */
    async submitTransaction(merchantId: string, id: string, rawTxid: unknown) {
      const p = await load(sql, merchantId, id);
      const family = transfers.of(p.chain);
      const txid = family.parseTxid(rawTxid);
      if (p.status !== 'awaiting_signature' && p.status !== 'broadcast' && p.status !== 'completed') {
        throw conflict('payout_state_invalid', `Payout ${id} is ${p.status}; a transaction is accepted only after approval (awaiting_signature).`);
      }
      if (p.txid === txid) return present(p); // reported again: nothing changes
      if (p.status === 'completed') throw conflict('payout_already_broadcast', `Payout ${id} was already paid by ${p.txid}.`, 'txid');
      await assertTxidUnused(p.chain, txid, id);
      const check = await family.checkReported(p, targetOf(p), txid, 'payout');
      try {
        await sql.begin(async (tx) => {
          const cur = await load(tx, merchantId, id, true);
          const recorded = { txid, sender: check.sender, evm_nonce: check.evm_nonce, block_number: check.block_number, output_index: check.output_index };
          if (cur.status === 'awaiting_signature') {
            const networkFee = cur.unsigned_txid === txid ? cur.network_fee : null;
            await move(tx, id, 'awaiting_signature', 'broadcast', { ...recorded, network_fee: networkFee, broadcast_at: new Date() });
            await bookPayoutSent(tx, { ...cur, network_fee: networkFee ?? 0n });
          } else if (cur.status === 'broadcast' && cur.txid === p.txid) {
            await tx`update payouts set txid = ${txid}, block_number = ${recorded.block_number}, updated_at = now() where id = ${id} and status = 'broadcast'`;
            await emit(tx, id, 'payout.broadcast');
          } else if (cur.txid !== txid) {
            throw conflict('payout_state_invalid', `Payout ${id} changed while this transaction was checked (now ${cur.status}); read it again.`);
          }
        });
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw conflict('transaction_already_used', `Transaction ${txid} is already recorded for another payout: one transaction pays one payout.`, 'txid');
        throw err;
      }
      deps.logger.info({ payout_id: id, txid, mined: check.mined }, 'payout transaction reported and checked');
      return present(await load(sql, merchantId, id));
    },

    /**
     * Follows the payouts of `chain` that were broadcast (and those completed within the last day,
     * for reorgs): `completed` at the payout's confirmations, back to `broadcast` on a reorg,
     * `failed` (postings reversed) when the chain shows a transaction that does not pay it, and a
     * recorded transaction the node lost is sent again.
     */
    async track(chain: string): Promise<{ completed: number; reorged: number; resent: number; failed: number }> {
      if (!deps.chains[chain]) return { completed: 0, reorged: 0, resent: 0, failed: 0 };
      const rows = await sql<(PayoutRow & { required: number })[]>`
        select *, confirmations_required as required from payouts
        where chain = ${chain} and (status = 'broadcast' or (status = 'completed' and completed_at > now() - interval '1 day'))
        order by seq limit 500`;
      return trackTransfers({
        chain, family: transfers.of(chain), rows, targetOf, logger: deps.logger, noun: 'payout',
        complete: (p, blockNumber) => sql.begin((tx) => move(tx, p.id, 'broadcast', 'completed', { completed_at: new Date(), block_number: blockNumber })),
        reorg: (p, blockNumber) => sql.begin((tx) => move(tx, p.id, 'completed', 'broadcast', { completed_at: null, block_number: blockNumber })),
        fail: (p, reason) => sql.begin(async (tx) => {
          if (p.status === 'completed') await move(tx, p.id, 'completed', 'broadcast', { completed_at: null });
          if (!(await move(tx, p.id, 'broadcast', 'failed', { failed_at: new Date(), failure_reason: reason.slice(0, 500) }))) return false;
          await bookPayoutSent(tx, { ...p, network_fee: p.network_fee ?? 0n }, { reverse: true });
          return true;
        }),
        resend: sendRecorded,
      });
    },
  };
}

export type PayoutService = ReturnType<typeof createPayoutService>;
export type PayoutObject = ReturnType<PayoutService['present']>;

/** The payout service of a process (the API and the maintenance worker build it the same way). */
export function payoutServiceFor(deps: Pick<Deps, 'sql' | 'config' | 'assets' | 'logger'>): PayoutService {
  return createPayoutService({ sql: deps.sql, chains: deps.config.chains, assets: deps.assets, logger: deps.logger });
}
