/**
 * Settlement: records what the chain watchers observe and recomputes invoices from their payments.
 *
 * Watchers call these inside ONE database transaction per block (or per mempool pass): payments
 * are upserted (unique by chain, txid, output index), the chain cursor advances, affected invoices
 * are recomputed, ledger entries and outbox events are written — all or nothing. After the commit
 * the caller publishes the changed invoice ids for live status (`publishChanges`).
 */
import type { Redis } from 'ioredis';
import type { Db, TxSql } from '../db/client.ts';
import type { ChainConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { AssetRegistry } from '../money/assets.ts';
import { newId } from '../ids.ts';
import { loadInvoice, presentInvoice, type InvoiceRow } from '../invoices/present.ts';
import { evaluate, markedAs, path, sentOnTime, type PaymentFacts } from './state-machine.ts';
import type { InvoiceStatus } from '../invoices/status.ts';
import { refreshEventObjects, writeEvent, type EventType } from '../invoices/events.ts';
import { bookPaymentState, syncMarkPostings, type LedgerState } from './ledger.ts';
import type { SettlementObserver } from '../metrics/index.ts';

/** One output / transfer to a deposit address, as a watcher saw it. */
export interface Observation {
  txid: string;
  /** vout (Bitcoin), log index (ERC-20), -1 native tx transfer, -2 balance-check credit. */
  outputIndex: number;
  /** Canonical deposit address: bech32 lowercase (Bitcoin) or lowercase hex (EVM). */
  address: string;
  /** ERC-20 contract (lowercase) or null for the chain's native coin / Bitcoin. */
  token: string | null;
  amount: bigint;
  /** The block it is in, or null when seen in the mempool only. */
  block: { hash: string; height: number; time: Date } | null;
}

export interface BlockRef {
  height: number;
  hash: string;
  prevHash: string;
  time: Date;
}

export interface SettlementService {
  /** Upserts payments; returns the invoice ids they touch. */
  recordObservations(tx: TxSql, chain: string, obs: Observation[]): Promise<Set<string>>;
  /** Records a processed block and moves the chain cursor to it. */
  advanceCursor(tx: TxSql, chain: string, block: BlockRef, keep: number): Promise<void>;
  cursor(db: Db, chain: string): Promise<{ height: number; hash: string } | null>;
  /** Stored hash of a recent block (reorg detection). */
  blockHashAt(db: Db, chain: string, height: number): Promise<string | null>;
  /** Height of the oldest block still kept for reorg detection. */
  oldestKeptHeight(db: Db, chain: string): Promise<number | null>;
  /**
   * Rolls the chain back to `height`: orphaned blocks are forgotten and their payments become
   * `pending` (when the node still has the tx in its mempool) or `reorged`. Returns touched invoices.
   */
  rollbackTo(tx: TxSql, chain: string, height: number, stillInMempool: (txid: string) => boolean): Promise<Set<string>>;
  /** Pending payments whose tx is no longer known (double-spent, replaced, evicted) → `replaced`. */
  markVanished(tx: TxSql, chain: string, txids: string[]): Promise<Set<string>>;
  /**
   * Records the node's finalized height (capped at the processed tip) and recomputes invoices
   * waiting for confirmations; blocks at or below it count as fully confirmed.
   */
  setFinalized(tx: TxSql, chain: string, height: number): Promise<Set<string>>;
  /** Txids of payments still unconfirmed on a chain. */
  pendingTxids(db: Db, chain: string): Promise<string[]>;
  /** Invoices on a chain waiting for confirmations (recompute them when a block arrives). */
  awaitingConfirmations(db: Db, chain: string): Promise<Set<string>>;
  /** Recomputes invoices (state, exception, amount paid, ledger, events). Returns those that changed. */
  recompute(tx: TxSql, invoiceIds: Iterable<string>, now?: Date): Promise<Set<string>>;
  /** Publishes changed invoice ids for live status (call after commit). */
  publishChanges(ids: Iterable<string>): Promise<void>;
}

export const INVOICE_CHANNEL = (prefix: string) => `${prefix}:invoice-updates`;

interface PaymentRow {
  id: string;
  invoice_id: string;
  merchant_id: string;
  chain: string;
  txid: string;
  output_index: number;
  method: string;
  amount: bigint;
  status: PaymentFacts['status'];
  block_height: bigint | null;
  block_time: Date | null;
  first_seen_at: Date;
  late: boolean;
  ledger_state: LedgerState;
}

/** The highest block height of `chain` that Kassa recorded (its own clock) at or before `at`. */
export async function recordedHeightAt(db: Db, chain: string, at: Date): Promise<number | null> {
  const [row] = await db<{ h: bigint | null }[]>`
    select max(height) as h from chain_tip_observations where chain = ${chain} and observed_at <= ${at}`;
  return row?.h === null || row?.h === undefined ? null : Number(row.h);
}

export function createSettlementService(deps: {
  chains: Record<string, ChainConfig>;
  assets: AssetRegistry;
  logger: Logger;
  redis?: Redis;
  queuePrefix: string;
  publicUrl: string;
  /** Metrics hooks (src/metrics): payments detected, invoice transitions. */
  metrics?: SettlementObserver;
}): SettlementService {
  const methodFor = (chain: string, token: string | null): string | undefined =>
    deps.assets.methods().find((m) => m.chain === chain && (m.token ?? null) === (token ?? null))?.method;

  /**
   * Writes an event with the invoice as it stands. That `data.object` is provisional: the
   * recompute that follows in the same transaction (every caller recomputes the invoices it
   * touches) replaces it with the invoice as it stands after its changes (`refreshEventObjects`).
   */
  async function emit(tx: TxSql, inv: Pick<InvoiceRow, 'id' | 'merchant_id'>, type: EventType, payment?: unknown): Promise<void> {
    const { row, methods } = await loadInvoice(tx, inv.id, undefined);
    await writeEvent(tx, {
      merchantId: row.merchant_id, type, invoiceId: row.id,
      object: presentInvoice(row, methods, deps.chains, deps.publicUrl), payment,
    });
  }

  const paymentSummary = (p: PaymentRow) => ({
    id: p.id, chain: p.chain, txid: p.txid, output_index: p.output_index, method: p.method, status: p.status,
    block_height: p.block_height === null ? null : Number(p.block_height),
  });

  async function recomputeOne(tx: TxSql, invoiceId: string, now: Date): Promise<boolean> {
    const [inv] = await tx<InvoiceRow[]>`select * from invoices where id = ${invoiceId} for update`;
    if (!inv) return false;
    const methods = await tx<{ method: string; rate: string; decimals: number; confirmations_required: number; chain: string }[]>`
      select method, rate, decimals, confirmations_required, chain from invoice_payment_methods where invoice_id = ${invoiceId}`;
    const payments = await tx<PaymentRow[]>`
      select id, invoice_id, merchant_id, chain, txid, output_index, method, amount, status, block_height, block_time, first_seen_at, late, ledger_state
      from payments where invoice_id = ${invoiceId} order by seq`;
    const tips = new Map<string, { tip: number; finalized: number | null }>();
    for (const chain of new Set(payments.map((p) => p.chain))) {
      const [c] = await tx<{ tip_height: bigint | null; finalized_height: bigint | null }[]>`
        select tip_height, finalized_height from chain_state where chain = ${chain}`;
      tips.set(chain, {
        tip: c?.tip_height === null || c?.tip_height === undefined ? -1 : Number(c.tip_height),
        finalized: c?.finalized_height === null || c?.finalized_height === undefined ? null : Number(c.finalized_height),
      });
    }
    // Kassa's own proof of time per chain: the highest tip it recorded at or before expires_at.
    const heightAtDeadline = new Map<string, number | null>();
    for (const chain of new Set(payments.map((p) => p.chain))) heightAtDeadline.set(chain, await recordedHeightAt(tx, chain, inv.expires_at));
    const required = new Map(methods.map((m) => [m.method, m.confirmations_required]));
    const confirmations = (p: PaymentRow): number => {
      if (p.status !== 'confirmed' || p.block_height === null) return 0;
      const t = tips.get(p.chain) ?? { tip: -1, finalized: null };
      if (t.finalized !== null && Number(p.block_height) <= t.finalized) return Number.MAX_SAFE_INTEGER; // final
      return Math.max(0, t.tip - Number(p.block_height) + 1);
    };

    // 1. Ledger: every payment to a deposit address is booked, pending until confirmed enough.
    let changed = false;
    const confirmedNow: PaymentRow[] = [];
    for (const p of payments) {
      const live = p.status === 'pending' || p.status === 'confirmed';
      const need = required.get(p.method);
      const target: LedgerState = !live
        ? p.ledger_state === 'none' ? 'none' : 'reversed'
        : need !== undefined && confirmations(p) >= need ? 'available' : 'pending';
      if (target !== p.ledger_state) {
        await bookPaymentState(tx, { id: p.id, merchantId: p.merchant_id, invoiceId, chain: p.chain, method: p.method, amount: p.amount }, p.ledger_state, target);
        await tx`update payments set ledger_state = ${target} where id = ${p.id}`;
        if (target === 'available') confirmedNow.push(p);
        changed = true;
      }
    }

    // 2. State.
    const facts: PaymentFacts[] = payments.map((p) => ({
      method: p.method, amount: p.amount, status: p.status, confirmations: confirmations(p), firstSeenAt: p.first_seen_at,
      blockHeight: p.block_height === null ? null : Number(p.block_height), heightAtDeadline: heightAtDeadline.get(p.chain) ?? null,
    }));
    const ev = evaluate(
      {
        status: inv.status, amount: inv.amount, currencyDecimals: inv.currency_decimals, toleranceBps: inv.tolerance_bps,
        expiresAt: inv.expires_at, monitoringUntil: inv.monitoring_until, marked: inv.marked_at !== null,
      },
      methods.map((m) => ({ method: m.method, rate: m.rate, decimals: m.decimals, confirmationsRequired: m.confirmations_required })),
      facts,
      now,
    );
    // A marked invoice keeps its status, but what arrives or leaves later changes what the mark implies.
    const marked = markedAs({ status: inv.status, marked: inv.marked_at !== null });
    if (marked && await syncMarkPostings(tx, { id: invoiceId, merchantId: inv.merchant_id, currency: inv.currency, amount: inv.amount, amountPaid: ev.amountPaid, markedAs: marked })) {
      changed = true;
    }
    // `payments.late` (API, report) is the same rule the state machine just applied.
    for (const [i, p] of payments.entries()) {
      const late = !sentOnTime(facts[i]!, inv.expires_at);
      if (late !== p.late) {
        await tx`update payments set late = ${late}, updated_at = now() where id = ${p.id}`;
        changed = true;
      }
    }
    // The invoice's amount_paid is what counts toward its price (`countsTowardPrice`): the same
    // figure as the report's `received`. Money that arrived but does not count (late, or on an
    // invoice marked invalid) shows in payment_methods[].amount_paid and the report's not_counted.
    const counted = marked === 'settled' ? ev.amountPaid : marked === 'invalid' ? 0n : ev.amountPaidOnTime;
    if (ev.exception !== inv.exception || counted !== inv.amount_paid) {
      await tx`update invoices set exception = ${ev.exception}, amount_paid = ${counted}, updated_at = now() where id = ${invoiceId}`;
      changed = true;
    }
    // 3. Events, after every change above; their data.object is the invoice as it now stands.
    for (const p of confirmedNow) await emit(tx, inv, 'invoice.payment_confirmed', paymentSummary(p));
    let current: InvoiceStatus = inv.status;
    for (const move of path(inv.status, ev.status)) {
      const res = await tx`
        update invoices set status = ${move.to}, updated_at = now(),
          settled_at = case when ${move.to} = 'settled' then coalesce(settled_at, now()) else settled_at end
        where id = ${invoiceId} and status = ${move.from}`;
      if (res.count === 0) break; // someone else moved it: a no-op, never an error
      current = move.to;
      changed = true;
      deps.metrics?.invoiceTransition(move.from, move.to);
      await emit(tx, inv, move.event as EventType);
    }
    if (ev.exception !== inv.exception && (ev.exception === 'paid_partial' || ev.exception === 'paid_late')) {
      await emit(tx, inv, ev.exception === 'paid_partial' ? 'invoice.paid_partial' : 'invoice.paid_late');
    }
    if (current !== inv.status) {
      deps.logger.info({ invoice_id: invoiceId, from: inv.status, to: current, exception: ev.exception }, 'invoice state changed');
    }
    const [wrote] = changed ? [{ n: 1 }] : await tx<{ n: number }[]>`
      select 1 as n from events where invoice_id = ${invoiceId} and xmin = pg_current_xact_id()::xid limit 1`;
    if (wrote) {
      const { row, methods: shown } = await loadInvoice(tx, invoiceId, undefined);
      await refreshEventObjects(tx, invoiceId, presentInvoice(row, shown, deps.chains, deps.publicUrl));
    }
    return changed;
  }

  const service: SettlementService = {
    async recordObservations(tx, chain, obs) {
      const touched = new Set<string>();
      for (const o of obs) {
        const [dep] = await tx<{ invoice_id: string; merchant_id: string; expires_at: Date }[]>`
          select d.invoice_id, d.merchant_id, i.expires_at from deposit_addresses d join invoices i on i.id = d.invoice_id
          where d.chain = ${chain} and d.address = ${o.address}`;
        if (!dep) continue;
        const method = methodFor(chain, o.token);
        if (!method) continue; // a token this deployment does not know: not a payment Kassa can value
        const asset = deps.assets.method(method)!.symbol;
        const status = o.block ? 'confirmed' : 'pending';
        const [row] = await tx<(PaymentRow & { inserted: boolean; prev_status: string | null })[]>`
          insert into payments (id, chain, txid, output_index, address, invoice_id, merchant_id, method, asset, amount, status,
                                block_hash, block_height, block_time, late)
          values (${newId('pay')}, ${chain}, ${o.txid}, ${o.outputIndex}, ${o.address}, ${dep.invoice_id}, ${dep.merchant_id},
                  ${method}, ${asset}, ${o.amount}, ${status}, ${o.block?.hash ?? null}, ${o.block?.height ?? null},
                  ${o.block?.time ?? null}, clock_timestamp() > ${dep.expires_at})
          on conflict (chain, txid, output_index) do update set
            status = excluded.status,
            block_hash = excluded.block_hash,
            block_height = excluded.block_height,
            block_time = coalesce(excluded.block_time, payments.block_time),
            updated_at = now()
          where (payments.status is distinct from excluded.status
                 or payments.block_hash is distinct from excluded.block_hash)
            -- A mempool sighting never un-confirms a payment: the listing can be older than the
            -- block that mined it (or come from a node mid-reorg). Only rollbackTo un-confirms.
            and not (payments.status = 'confirmed' and excluded.block_hash is null)
          returning id, invoice_id, merchant_id, chain, txid, output_index, method, amount, status, block_height, block_time,
                    first_seen_at, late, ledger_state, (xmax = 0) as inserted`;
        if (!row) continue; // already recorded exactly like this: a duplicate delivery is a no-op
        touched.add(row.invoice_id);
        if (row.inserted) {
          deps.metrics?.paymentDetected({ chain, asset, seenAt: row.first_seen_at, blockTime: o.block?.time ?? null });
          await emit(tx, { id: row.invoice_id, merchant_id: row.merchant_id }, 'invoice.payment_detected', paymentSummary(row));
        }
      }
      return touched;
    },

    async advanceCursor(tx, chain, block, keep) {
      await tx`
        insert into chain_blocks (chain, height, hash, prev_hash, block_time)
        values (${chain}, ${block.height}, ${block.hash}, ${block.prevHash}, ${block.time})
        on conflict (chain, height) do update set hash = excluded.hash, prev_hash = excluded.prev_hash, block_time = excluded.block_time`;
      await tx`
        insert into chain_state (chain, tip_height, tip_hash, updated_at) values (${chain}, ${block.height}, ${block.hash}, now())
        on conflict (chain) do update set tip_height = excluded.tip_height, tip_hash = excluded.tip_hash, updated_at = now()`;
      await tx`delete from chain_blocks where chain = ${chain} and height <= ${block.height - keep}`;
      // Kassa's own time record of this tip (the on-time proof, `sentOnTime`). A record at this
      // height with another hash was on a branch that left the chain: it and every record above it
      // still prove that the fork point (height - 1, common to both branches) existed by then,
      // so they are folded into one record there, keeping the earliest time.
      const [old] = await tx<{ hash: string }[]>`select hash from chain_tip_observations where chain = ${chain} and height = ${block.height}`;
      if (old && old.hash !== block.hash) {
        const [gone] = await tx<{ t: Date | null }[]>`
          with d as (delete from chain_tip_observations where chain = ${chain} and height >= ${block.height} returning observed_at)
          select min(observed_at) as t from d`;
        if (gone?.t && block.height > 0) {
          await tx`
            insert into chain_tip_observations (chain, height, hash, observed_at)
            values (${chain}, ${block.height - 1}, ${block.prevHash}, ${gone.t})
            on conflict (chain, height) do update set observed_at = least(chain_tip_observations.observed_at, excluded.observed_at)`;
        }
      }
      // clock_timestamp(), not now(): never earlier than the moment this block was actually known.
      await tx`
        insert into chain_tip_observations (chain, height, hash, observed_at)
        values (${chain}, ${block.height}, ${block.hash}, clock_timestamp())
        on conflict (chain, height) do nothing`;
    },

    async cursor(db, chain) {
      const [row] = await db<{ tip_height: bigint | null; tip_hash: string | null }[]>`select tip_height, tip_hash from chain_state where chain = ${chain}`;
      if (!row || row.tip_height === null || row.tip_hash === null) return null;
      return { height: Number(row.tip_height), hash: row.tip_hash };
    },

    async blockHashAt(db, chain, height) {
      const [row] = await db<{ hash: string }[]>`select hash from chain_blocks where chain = ${chain} and height = ${height}`;
      return row?.hash ?? null;
    },

    async oldestKeptHeight(db, chain) {
      const [row] = await db<{ h: bigint | null }[]>`select min(height) as h from chain_blocks where chain = ${chain}`;
      return row?.h === null || row?.h === undefined ? null : Number(row.h);
    },

    async rollbackTo(tx, chain, height, stillInMempool) {
      const touched = new Set<string>();
      const orphaned = await tx<PaymentRow[]>`
        select id, invoice_id, merchant_id, chain, txid, output_index, method, amount, status, block_height, block_time, first_seen_at, late, ledger_state
        from payments where chain = ${chain} and block_height > ${height} and status = 'confirmed'`;
      for (const p of orphaned) {
        const status = stillInMempool(p.txid) ? 'pending' : 'reorged';
        await tx`update payments set status = ${status}, block_hash = null, block_height = null, updated_at = now() where id = ${p.id}`;
        touched.add(p.invoice_id);
        await emit(tx, { id: p.invoice_id, merchant_id: p.merchant_id }, 'invoice.payment_reorged', { ...paymentSummary(p), status });
      }
      await tx`delete from chain_blocks where chain = ${chain} and height > ${height}`;
      // EVM flushes out of deposit addresses in the dropped blocks (the re-scan records them again if re-mined).
      await tx`delete from evm_outflows where chain = ${chain} and block_number > ${height}`;
      const [block] = await tx<{ hash: string }[]>`select hash from chain_blocks where chain = ${chain} and height = ${height}`;
      await tx`update chain_state set tip_height = ${height}, tip_hash = ${block?.hash ?? null},
                 finalized_height = least(finalized_height, ${height}), updated_at = now() where chain = ${chain}`;
      deps.logger.warn({ chain, rolled_back_to: height, orphaned_payments: orphaned.length }, 'chain reorganisation: rolled back');
      return touched;
    },

    async markVanished(tx, chain, txids) {
      const touched = new Set<string>();
      if (txids.length === 0) return touched;
      const rows = await tx<{ invoice_id: string }[]>`
        update payments set status = 'replaced', updated_at = now()
        where chain = ${chain} and txid = any(${txids}) and status = 'pending'
        returning invoice_id`;
      for (const r of rows) touched.add(r.invoice_id);
      return touched;
    },

    async setFinalized(tx, chain, height) {
      const rows = await tx`
        update chain_state set finalized_height = least(${height}, tip_height)
        where chain = ${chain} and finalized_height is distinct from least(${height}, tip_height)
        returning chain`;
      if (rows.length === 0) return new Set();
      const waiting = await service.awaitingConfirmations(tx, chain);
      return service.recompute(tx, waiting);
    },

    async pendingTxids(db, chain) {
      const rows = await db<{ txid: string }[]>`select distinct txid from payments where chain = ${chain} and status = 'pending'`;
      return rows.map((r) => r.txid);
    },

    async awaitingConfirmations(db, chain) {
      const rows = await db<{ invoice_id: string }[]>`
        select distinct p.invoice_id from payments p
        where p.chain = ${chain} and p.status in ('pending', 'confirmed') and p.ledger_state <> 'available'`;
      return new Set(rows.map((r) => r.invoice_id));
    },

    async recompute(tx, invoiceIds, now = new Date()) {
      const changed = new Set<string>();
      // A stable order avoids deadlocks between two transactions locking the same invoices.
      for (const id of [...new Set(invoiceIds)].sort()) if (await recomputeOne(tx, id, now)) changed.add(id);
      return changed;
    },

    async publishChanges(ids) {
      if (!deps.redis) return;
      for (const id of ids) {
        await deps.redis.publish(INVOICE_CHANNEL(deps.queuePrefix), id).catch((err: Error) =>
          deps.logger.warn({ err: err.message }, 'could not publish invoice update'));
      }
    },
  };
  return service;
}
