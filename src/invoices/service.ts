/**
 * Invoices: creation (payment methods, locked rates, one deposit address per method, outbox
 * event, all in one transaction), reads, cancel and manual marks.
 */
import type postgres from 'postgres';
import type { Db, Sql, TxSql } from '../db/client.ts';
import type { ChainConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { AssetRegistry, CryptoAsset } from '../money/assets.ts';
import type { RateService } from '../rates/index.ts';
import { loadPaymentSettings, type Merchant, type MerchantPaymentSettings, type SpeedPolicy } from '../merchants/service.ts';
import { INVOICE_AMOUNT_MAX_WHOLE_DIGITS, parseAmount } from '../money/amount.ts';
import { payableAmountFor } from '../money/rate.ts';
import { newId, randomBase62 } from '../ids.ts';
import { conflict, invalidParam, unprocessable } from '../errors.ts';
import { API_VERSION, writeEvent } from './events.ts';
import { loadInvoice, loadMethods, presentInvoice, type InvoiceObject, type InvoiceRow, type MethodRow } from './present.ts';
import { pageOf, type Page } from '../api/pagination.ts';
import { toJsonText, type JsonText } from '../json-text.ts';
import { allocateBitcoinAddress, type AllocatedBitcoinAddress } from '../chains/bitcoin/address-pool.ts';
import { chainFamily } from '../chains/families.ts';

/** Outputs below this many satoshis are dust for common wallets and nodes (P2PKH dust limit). */
export const BITCOIN_DUST_SATS = 546n;

export interface CreateInvoiceInput {
  amount: unknown;
  currency: string;
  payment_methods?: string[] | undefined;
  order_id?: string | undefined;
  description?: string | undefined;
  metadata?: Record<string, string> | undefined;
  expires_in?: number | undefined;
  buyer_email?: string | undefined;
  locale?: 'en' | 'zh-CN' | undefined;
  redirect_url?: string | undefined;
  speed_policy?: SpeedPolicy | undefined;
}

export interface InvoiceFilters {
  status?: string | undefined;
  orderId?: string | undefined;
  createdGte?: Date | undefined;
  createdLt?: Date | undefined;
}

/** An Idempotency-Key to claim, and answer, in the same statement that creates the invoice. */
export interface IdempotencyClaim {
  key: string;
  /** The API key that sent the request (its stored response is replayed only to that key). */
  apiKeyId: string;
  requestHash: string;
  method: string;
  path: string;
}

export interface CreateInvoiceOptions {
  /** Stored on the invoice (unique per merchant): a second create with it returns the first invoice. */
  idempotencyKey?: string | undefined;
  /** The merchant's payment settings when the caller has them already (the API reads them with the key). */
  paymentSettings?: MerchantPaymentSettings | undefined;
  /**
   * Claim this Idempotency-Key and store the 201 response in the same statement as the invoice
   * (`idempotency_keys`, replayed by the API's idempotency layer). When the key is taken already,
   * nothing is written and `IdempotencyClaimNeeded` is thrown: the caller claims the key the usual
   * way (or replays its stored answer) and creates again with only `idempotencyKey`.
   */
  idempotency?: IdempotencyClaim | undefined;
  /**
   * A boolean SQL expression the statement that creates the invoice evaluates first: when false,
   * nothing is written (no pool address is taken either) and `PreconditionFailed` is thrown. The
   * API passes the check that a cached API-key authentication still holds.
   */
  precondition?: ((db: Db) => postgres.Fragment) | undefined;
}

/**
 * What invoice commands (read-time deadlines, cancel, mark) need from settlement: the
 * SettlementService provides it and is passed in, so src/invoices never imports src/settlement
 * (docs/architecture.md §3).
 */
export interface InvoiceRecompute {
  /** Brings the invoices to the state their payments and deadlines say; answers the ids that changed. */
  recompute(tx: TxSql, invoiceIds: Iterable<string>): Promise<Set<string>>;
  /** Tells live-status listeners (checkout page) about changed invoices, after the commit. */
  publishChanges(ids: Iterable<string>): Promise<void>;
}

/** See `CreateInvoiceOptions.precondition`: it did not hold, and nothing was written. */
export class PreconditionFailed extends Error {
  constructor() {
    super('the precondition of the invoice statement did not hold');
  }
}

/** See `CreateInvoiceOptions.idempotency`. */
export class IdempotencyClaimNeeded extends Error {
  constructor() {
    super('the Idempotency-Key is taken: claim it separately');
  }
}

export interface InvoiceService {
  /** Payment methods the merchant has enabled (and the deployment supports). */
  enabledMethods(db: Db, merchantId: string): Promise<CryptoAsset[]>;
  create(merchant: Merchant, input: CreateInvoiceInput, opts?: CreateInvoiceOptions): Promise<InvoiceObject>;
  /** Like `create`, but answers the invoice object as JSON text (exactly what was stored for replay). */
  createJson(merchant: Merchant, input: CreateInvoiceInput, opts?: CreateInvoiceOptions): Promise<JsonText<InvoiceObject>>;
  get(merchantId: string | undefined, id: string): Promise<InvoiceObject>;
  list(merchantId: string, filters: InvoiceFilters, page: Page): Promise<{ data: InvoiceObject[]; hasMore: boolean }>;
  seqOf(merchantId: string, id: string): Promise<bigint | undefined>;
  cancel(merchantId: string, id: string): Promise<InvoiceObject>;
  /**
   * `alsoInTx` runs inside the mark's transaction when the mark changes something (the dashboard
   * writes its audit row there, so the decision and its audit record commit together or not at all).
   */
  mark(
    merchantId: string, id: string, status: 'settled' | 'invalid', by: string, reason: string | undefined,
    alsoInTx?: (tx: TxSql) => Promise<void>,
  ): Promise<InvoiceObject>;
}

export function createInvoiceService(deps: {
  sql: Sql;
  chains: Record<string, ChainConfig>;
  assets: AssetRegistry;
  rates: RateService;
  settlement: InvoiceRecompute;
  publicUrl: string;
  logger: Logger;
}): InvoiceService {
  const { sql } = deps;
  // Placeholders for what only the database knows when the response text is built (see prepareInsert):
  // random per service instance, so no request content can contain them.
  const nonce = randomBase62(24);
  const PH = { address: `kassa${nonce}A`, created: `kassa${nonce}C`, expires: `kassa${nonce}E`, monitoring: `kassa${nonce}M` };
  const placeholderDate = (ph: string) => ({ toISOString: () => ph }) as Date;
  const PH_DATE = { created: placeholderDate(PH.created), expires: placeholderDate(PH.expires), monitoring: placeholderDate(PH.monitoring) };
  const present = (row: InvoiceRow, methods: Awaited<ReturnType<typeof loadMethods>>) =>
    presentInvoice(row, methods.get(row.id) ?? [], deps.chains, deps.publicUrl);

  /** The methods a merchant's payment settings enable (and the deployment supports). */
  function methodsFromSettings(settings: MerchantPaymentSettings): CryptoAsset[] {
    const out: CryptoAsset[] = [];
    for (const chain of settings.bitcoin) {
      const m = deps.assets.method('BTC');
      if (m && m.chain === chain) out.push(m);
    }
    for (const row of settings.evm) {
      for (const symbol of row.assets) {
        const m = deps.assets.method(`${symbol}-${row.chain}`);
        if (m) out.push(m);
      }
    }
    return out;
  }

  async function enabledMethods(db: Db, merchantId: string): Promise<CryptoAsset[]> {
    return methodsFromSettings(await loadPaymentSettings(db, merchantId));
  }

  /** Re-checks deadlines at read time (the repeatable job does it too, but reads must never be stale). */
  async function refreshIfDue(row: InvoiceRow): Promise<boolean> {
    const now = Date.now();
    const due = (row.status === 'new' && row.expires_at.getTime() <= now) || (row.status === 'processing' && row.monitoring_until.getTime() <= now);
    if (!due) return false;
    const changed = await sql.begin((tx) => deps.settlement.recompute(tx, [row.id]));
    await deps.settlement.publishChanges(changed);
    return changed.size > 0;
  }

  async function getOne(merchantId: string | undefined, id: string): Promise<InvoiceObject> {
    let { row, methods } = await loadInvoice(sql, id, merchantId);
    if (await refreshIfDue(row)) ({ row, methods } = await loadInvoice(sql, id, merchantId));
    return presentInvoice(row, methods, deps.chains, deps.publicUrl);
  }

  interface Plan {
    id: string;
    amount: bigint;
    currency: { code: string; decimals: number };
    speed: SpeedPolicy;
    expiresIn: number;
    terms: { m: CryptoAsset; rate: { rate: string; source: string }; due: bigint; confirmations: number }[];
  }

  /** Validates the request against the merchant's settings and locks the rates (no writes). */
  async function planInvoice(merchant: Merchant, input: CreateInvoiceInput, settings: MerchantPaymentSettings): Promise<Plan> {
    const currency = deps.assets.currency(input.currency, 'currency');
    const amount = parseAmount(input.amount, currency.decimals, { param: 'amount', unit: currency.code, maxWholeDigits: INVOICE_AMOUNT_MAX_WHOLE_DIGITS });

    const enabled = methodsFromSettings(settings);
    if (enabled.length === 0) {
      throw unprocessable('no_payment_methods', 'This merchant has no payment method set up. Configure Bitcoin (PUT /v1/merchant/payment_methods/bitcoin) or an EVM chain first.');
    }
    let chosen = enabled;
    if (input.payment_methods !== undefined) {
      const byId = new Map(enabled.map((m) => [m.method, m]));
      chosen = [];
      for (const [i, id] of input.payment_methods.entries()) {
        const m = byId.get(id);
        if (!m) {
          throw invalidParam(`payment_methods.${i}`, `Payment method "${id}" is not enabled for this merchant. Enabled: ${enabled.map((e) => e.method).join(', ')}.`, 'payment_method_not_enabled');
        }
        if (!chosen.includes(m)) chosen.push(m);
      }
    }

    const speed = input.speed_policy ?? merchant.defaultSpeedPolicy;
    // Rates first (network calls), outside any transaction.
    const terms = await Promise.all(
      chosen.map(async (m) => {
        const q = await deps.rates.rate(m.symbol, currency.code);
        const due = payableAmountFor(amount, currency.decimals, q.rate, m.symbol, m.decimals);
        if (m.method === 'BTC' && due < BITCOIN_DUST_SATS) {
          throw invalidParam('amount', `The amount is too small to pay in BTC: it converts to ${due} satoshis, below the ${BITCOIN_DUST_SATS}-satoshi dust limit wallets refuse to send.`, 'amount_too_small');
        }
        const confirmations = chainFamily(deps.chains[m.chain]!).confirmations(speed);
        return { m, rate: q, due, confirmations };
      }),
    );
    return { id: newId('inv'), amount, currency, speed, expiresIn: input.expires_in ?? merchant.defaultExpirySeconds, terms };
  }

  /**
   * The one way an invoice is created. The invoice, its deposit addresses, payment methods, the
   * outbox event and (optionally) the claimed Idempotency-Key with its stored response are written
   * by ONE statement (data-modifying CTEs, `insertInvoice`): one round trip, atomic without a
   * transaction block, taking the Bitcoin address from the pre-derived pool. Only when the pool has
   * no free address does the same statement run inside a transaction that first derives one
   * (`allocateBitcoinAddress`), so a failure hands nothing out. Answers the invoice as JSON text:
   * the event payload, the stored response and the HTTP answer are the same text.
   * An Idempotency-Key already on an invoice answers that invoice (nothing written); with
   * `opts.idempotency`, a taken key throws IdempotencyClaimNeeded instead.
   */
  async function createInvoice(merchant: Merchant, input: CreateInvoiceInput, opts: CreateInvoiceOptions): Promise<JsonText<InvoiceObject>> {
    const settings = opts.paymentSettings ?? (await loadPaymentSettings(sql, merchant.id));
    const plan = await planInvoice(merchant, input, settings);
    const prepared = prepareInsert(merchant, input, plan, settings);
    const idempotencyKey = opts.idempotency?.key ?? opts.idempotencyKey ?? null;
    let json: JsonText<InvoiceObject>;
    try {
      json =
        (await insertInvoice(sql, merchant, input, plan, prepared, idempotencyKey, opts, 'pool')) ??
        (await sql.begin(async (tx) => {
          const address = await allocateBitcoinAddress(tx, merchant.id, prepared.btcChain!);
          if (!address) throw unprocessable('no_payment_methods', 'Bitcoin is not set up for this merchant.');
          return (await insertInvoice(tx, merchant, input, plan, prepared, idempotencyKey, opts, address))!;
        }));
    } catch (err) {
      if (isDepositAddressCollision(err)) throw depositAddressConflict();
      // unique_violation: the Idempotency-Key is taken (idempotency_keys or the invoice's own key).
      // Nothing was written.
      if ((err as { code?: string }).code === '23505' && idempotencyKey !== null) {
        if (opts.idempotency) throw new IdempotencyClaimNeeded();
        // The same key created an invoice before (a retry after a crash, or a key older than 24 h).
        const [existing] = await sql<{ id: string }[]>`select id from invoices where merchant_id = ${merchant.id} and idempotency_key = ${idempotencyKey}`;
        if (existing) return toJsonText(await getOne(merchant.id, existing.id));
      }
      throw err;
    }
    deps.logger.info({ invoice_id: plan.id, merchant_id: merchant.id, methods: plan.terms.map((t) => t.m.method) }, 'invoice created');
    return json;
  }

  interface PreparedInsert {
    /** The Bitcoin chain key when the invoice has a Bitcoin method (its address comes from the pool). */
    btcChain: string | undefined;
    evmRows: { chain: string; address: string; derivation: object }[];
    methodJson: object[];
    /** The invoice object as JSON text, with placeholders for what only the database knows. */
    template: string;
  }

  /**
   * Everything the statement needs that is computed here: the EVM forwarder addresses (from the
   * treasury in `settings`), the payment-method rows and the response text with placeholders for
   * the database's clock and the pool address.
   */
  function prepareInsert(merchant: Merchant, input: CreateInvoiceInput, plan: Plan, settings: MerchantPaymentSettings): PreparedInsert {
    const { id, terms } = plan;
    let btcChain: string | undefined;
    const evmAddress = new Map<string, string>();
    const evmRows: PreparedInsert['evmRows'] = [];
    for (const key of new Set(terms.map((t) => t.m.chain))) {
      const a = chainFamily(deps.chains[key]!).depositAddress(key, id, settings);
      if (a.from === 'pool') {
        btcChain = key;
        continue;
      }
      evmAddress.set(key, a.address);
      evmRows.push({ chain: key, address: a.address.toLowerCase(), derivation: a.derivation });
    }
    const methodRows: MethodRow[] = terms.map((t) => ({
      invoice_id: id, method: t.m.method, chain: t.m.chain, asset: t.m.symbol, token: t.m.token ?? null, decimals: t.m.decimals,
      address: t.m.chain === btcChain ? PH.address : evmAddress.get(t.m.chain)!, rate: t.rate.rate, rate_source: t.rate.source,
      amount_due: t.due, confirmations_required: t.confirmations, paid: 0n,
    }));
    const row: InvoiceRow = {
      id, merchant_id: merchant.id, status: 'new', exception: null, amount: plan.amount, currency: plan.currency.code,
      currency_decimals: plan.currency.decimals, amount_paid: 0n, order_id: input.order_id ?? null, description: input.description ?? null,
      metadata: input.metadata ?? {}, buyer_email: input.buyer_email ?? null, locale: input.locale ?? 'en', redirect_url: input.redirect_url ?? null,
      speed_policy: plan.speed, tolerance_bps: merchant.paymentToleranceBps,
      expires_at: PH_DATE.expires, monitoring_until: PH_DATE.monitoring, created_at: PH_DATE.created, updated_at: PH_DATE.created,
      settled_at: null, cancelled_at: null, marked_at: null, marked_by: null, mark_reason: null,
    };
    const template = JSON.stringify(presentInvoice(row, methodRows, deps.chains, deps.publicUrl));
    // The Bitcoin row's address is null here: the statement fills in the one it allocates.
    const methodJson = methodRows.map(({ paid: _paid, invoice_id: _id, ...m }) => ({
      ...m, address: m.chain === btcChain ? null : m.address, amount_due: m.amount_due.toString(),
    }));
    return { btcChain, evmRows, methodJson, template };
  }

  /**
   * The statement (see `createInvoice`). `btcAddress` says where the Bitcoin address comes from:
   * 'pool' takes the lowest free one in the statement (then null is returned, nothing written, when
   * the pool has none), or an address already allocated in the transaction `db` belongs to.
   */
  async function insertInvoice(
    db: Db, merchant: Merchant, input: CreateInvoiceInput, plan: Plan, p: PreparedInsert, idempotencyKey: string | null, opts: CreateInvoiceOptions,
    btcAddress: 'pool' | AllocatedBitcoinAddress,
  ): Promise<JsonText<InvoiceObject> | null> {
    const { id } = plan;
    const { btcChain } = p;
    const idem = opts.idempotency;
    // The precondition, evaluated once (a CTE referenced twice is materialized): it gates the pool
    // address and the invoice, and everything else is written from the invoice's row. The deposit
    // addresses get their chain's cursor as chain_height here, as the BEFORE INSERT trigger would
    // (migration 0023 runs that trigger only for rows without one).
    const chk = opts.precondition ? db`chk as (select ${opts.precondition(db)} as ok),` : db``;
    const gate = opts.precondition ? db`and (select ok from chk)` : db``;
    // Date.prototype.toISOString's format; the times are whole milliseconds (date_trunc below).
    let body = db`
      replace(replace(replace(${p.template}::text,
        ${PH.created}, to_char(inv.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
        ${PH.expires}, to_char(inv.expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
        ${PH.monitoring}, to_char(inv.monitoring_until at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))`;
    if (btcChain !== undefined) body = db`replace(${body}, ${PH.address}, btc.address)`;
    const btc =
      btcChain === undefined
        ? db``
        : btcAddress === 'pool'
          ? db`
        btc as (
          update bitcoin_address_pool p set allocated_at = now()
          from bitcoin_key_sources s
          where s.id = p.source_id
            and (p.source_id, p.derivation_index) = (
              select f.source_id, f.derivation_index from bitcoin_address_pool f
              where f.source_id = (select id from bitcoin_key_sources where merchant_id = ${merchant.id} and chain = ${btcChain} and active)
                and f.allocated_at is null ${gate}
              order by f.derivation_index limit 1
              for update skip locked)
          returning p.address, p.script,
                    jsonb_build_object('source_id', p.source_id, 'index', p.derivation_index, 'descriptor', s.descriptor) as derivation),`
          : db`
        btc as (
          select ${btcAddress.address}::text as address, ${Buffer.from(btcAddress.script)}::bytea as script,
                 ${db.json(btcAddress.derivation as unknown as postgres.JSONValue)}::jsonb as derivation),`;
    const rows = await db<{ body: string | null; ok?: boolean }[]>`
      with t as (select date_trunc('milliseconds', now()) as at),
      ${chk}
      ${btc}
      inv as (
        insert into invoices (id, merchant_id, amount, currency, currency_decimals, order_id, description, metadata, buyer_email, locale,
                              redirect_url, speed_policy, tolerance_bps, idempotency_key, created_at, updated_at, expires_at, monitoring_until)
        select ${id}, ${merchant.id}, ${plan.amount}, ${plan.currency.code}, ${plan.currency.decimals}, ${input.order_id ?? null}, ${input.description ?? null},
               ${db.json(input.metadata ?? {})}, ${input.buyer_email ?? null}, ${input.locale ?? 'en'}, ${input.redirect_url ?? null}, ${plan.speed},
               ${merchant.paymentToleranceBps}, ${idempotencyKey}, t.at, t.at, t.at + make_interval(secs => ${plan.expiresIn}),
               t.at + make_interval(secs => ${plan.expiresIn + merchant.monitoringWindowSeconds})
        from t where true ${btcChain === undefined ? db`` : db`and exists (select from btc)`} ${gate}
        returning created_at, expires_at, monitoring_until),
      out as (
        select ${body} as body, ${btcChain === undefined ? db`null::text as address` : db`btc.address, btc.script, btc.derivation`}
        from inv ${btcChain === undefined ? db`` : db`cross join btc`}),
      da as (
        insert into deposit_addresses (chain, address, invoice_id, merchant_id, script, derivation, chain_height)
        ${btcChain === undefined ? db`` : db`select ${btcChain}::text, out.address, ${id}::text, ${merchant.id}::text, out.script, out.derivation,
               (select s.tip_height from chain_state s where s.chain = ${btcChain}) from out union all`}
        select d.chain, d.address, ${id}::text, ${merchant.id}::text, null::bytea, d.derivation, (select s.tip_height from chain_state s where s.chain = d.chain)
        from out cross join jsonb_to_recordset(${db.json(p.evmRows as unknown as postgres.JSONValue)}) as d(chain text, address text, derivation jsonb)),
      pm as (
        insert into invoice_payment_methods (invoice_id, method, chain, asset, token, decimals, address, rate, rate_source, amount_due, confirmations_required)
        select ${id}, x.method, x.chain, x.asset, x.token, x.decimals, coalesce(x.address, out.address), x.rate, x.rate_source, x.amount_due,
               x.confirmations_required
        from out cross join jsonb_to_recordset(${db.json(p.methodJson as unknown as postgres.JSONValue)})
          as x(method text, chain text, asset text, token text, decimals integer, address text, rate text, rate_source text, amount_due numeric,
               confirmations_required integer)),
      ev as (
        insert into events (id, merchant_id, type, invoice_id, api_version, payload)
        select ${newId('evt')}, ${merchant.id}, 'invoice.created', ${id}, ${API_VERSION}, ('{"object":' || out.body || '}')::jsonb from out)
      ${idem ? db`,
      ik as (
        insert into idempotency_keys (merchant_id, key, request_hash, method, path, status_code, response_plain, api_key_id)
        select ${merchant.id}, ${idem.key}, ${idem.requestHash}, ${idem.method}, ${idem.path}, 201, out.body, ${idem.apiKeyId} from out)` : db``}
      select (select body from out) as body ${opts.precondition ? db`, (select ok from chk) as ok` : db``}`;
    if (rows[0]?.ok === false) throw new PreconditionFailed();
    // The body is `p.template` (JSON.stringify of the invoice object) with the database's values filled in.
    return (rows[0]?.body ?? null) as JsonText<InvoiceObject> | null;
  }

  return {
    enabledMethods,

    async create(merchant, input, opts = {}) {
      return JSON.parse(await createInvoice(merchant, input, opts)) as InvoiceObject;
    },

    createJson: (merchant, input, opts = {}) => createInvoice(merchant, input, opts),
    get: getOne,

    async list(merchantId, f, page) {
      const rows = await sql<InvoiceRow[]>`
        select * from invoices
        where merchant_id = ${merchantId}
          ${f.status ? sql`and status = ${f.status}` : sql``}
          ${f.orderId ? sql`and order_id = ${f.orderId}` : sql``}
          ${f.createdGte ? sql`and created_at >= ${f.createdGte}` : sql``}
          ${f.createdLt ? sql`and created_at < ${f.createdLt}` : sql``}
          ${page.afterSeq !== undefined ? sql`and seq < ${page.afterSeq}` : sql``}
          ${page.beforeSeq !== undefined ? sql`and seq > ${page.beforeSeq}` : sql``}
        order by seq ${page.beforeSeq !== undefined ? sql`asc` : sql`desc`}
        limit ${page.limit + 1}`;
      const { data, hasMore } = pageOf(rows, page);
      const methods = await loadMethods(sql, data.map((r) => r.id));
      return { data: data.map((r) => present(r, methods)), hasMore };
    },

    async seqOf(merchantId, id) {
      const [row] = await sql<{ seq: bigint }[]>`select seq from invoices where id = ${id} and merchant_id = ${merchantId}`;
      return row?.seq;
    },

    async cancel(merchantId, id) {
      await loadInvoice(sql, id, merchantId); // 404 for unknown or another merchant's invoice
      const changed = await sql.begin(async (tx) => {
        const [inv] = await tx<InvoiceRow[]>`select * from invoices where id = ${id} for update`;
        if (inv!.cancelled_at) return false; // repeated command: a no-op
        const [counted] = await tx<{ n: number }[]>`select count(*)::int as n from payments where invoice_id = ${id}`;
        const n = counted?.n ?? 0;
        if (inv!.status !== 'new' || n > 0) {
          throw conflict('invoice_not_cancellable', `Only an unpaid invoice in status "new" can be cancelled; this one is "${inv!.status}"${n > 0 ? ' and has payments' : ''}.`);
        }
        // A cancelled invoice expires now; payments that still arrive are recorded as late.
        await tx`update invoices set cancelled_at = now(), expires_at = now(), updated_at = now() where id = ${id}`;
        await deps.settlement.recompute(tx, [id]);
        return true;
      });
      if (changed) await deps.settlement.publishChanges([id]);
      return getOne(merchantId, id);
    },

    async mark(merchantId, id, status, by, reason, alsoInTx) {
      await loadInvoice(sql, id, merchantId);
      const changed = await sql.begin(async (tx) => {
        const [inv] = await tx<InvoiceRow[]>`select * from invoices where id = ${id} for update`;
        if (inv!.marked_at && inv!.status === status) return false; // repeated: no-op
        if (inv!.status === status && !inv!.marked_at && status === 'settled') {
          throw conflict('invoice_already_settled', 'This invoice is already settled.');
        }
        await tx`
          update invoices set status = ${status}, exception = 'marked', marked_at = now(), marked_by = ${by}, mark_reason = ${reason ?? null},
            settled_at = case when ${status} = 'settled' then coalesce(settled_at, now()) else settled_at end, updated_at = now()
          where id = ${id}`;
        // The decision is booked in the invoice currency from the final state (a shortfall accepted
        // as settled is written off; money on an invoice marked invalid is owed back); earlier
        // mark postings are reversed by the difference, so repeated marks never double-book.
        // The recompute brings amount_paid to what now counts (a mark changes it) and books the
        // mark's postings from the final state (syncMarkPostings).
        await deps.settlement.recompute(tx, [id]);
        const { row, methods } = await loadInvoice(tx, id, merchantId);
        await writeEvent(tx, { merchantId, type: 'invoice.marked', invoiceId: id, object: presentInvoice(row, methods, deps.chains, deps.publicUrl) });
        if (alsoInTx) await alsoInTx(tx);
        return true;
      });
      if (changed) await deps.settlement.publishChanges([id]);
      return getOne(merchantId, id);
    },
  };
}

/** A deposit address the invoice was given is already another invoice's (deposit_addresses primary key). */
function isDepositAddressCollision(err: unknown): boolean {
  const e = err as { code?: string; constraint_name?: string };
  return e.code === '23505' && e.constraint_name === 'deposit_addresses_pkey';
}

/**
 * 409 for an invoice whose deposit address is already another invoice's: two merchant accounts
 * derive from the same Bitcoin key (set before Kassa refused that at PUT). Nothing was written.
 */
function depositAddressConflict() {
  return conflict(
    'deposit_address_in_use',
    'The deposit address for this invoice is already used by another invoice, usually because your Bitcoin key is also set up on another merchant account of this Kassa. Nothing was created. Set a key of your own (PUT /v1/merchant/payment_methods/bitcoin) before creating Bitcoin invoices.',
    'payment_methods',
  );
}
