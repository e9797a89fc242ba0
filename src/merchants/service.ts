/** Merchants and their settings. */
import type { Db } from '../db/client.ts';
import { newId } from '../ids.ts';
import { notFound } from '../errors.ts';

export const SPEED_POLICIES = ['high', 'medium', 'low_medium', 'low'] as const;
export type SpeedPolicy = (typeof SPEED_POLICIES)[number];

export interface Merchant {
  id: string;
  name: string;
  defaultExpirySeconds: number;
  monitoringWindowSeconds: number;
  paymentToleranceBps: number;
  defaultSpeedPolicy: SpeedPolicy;
  createdAt: Date;
  updatedAt: Date;
}

export interface MerchantSettingsPatch {
  name?: string;
  defaultExpirySeconds?: number;
  monitoringWindowSeconds?: number;
  paymentToleranceBps?: number;
  defaultSpeedPolicy?: SpeedPolicy;
}

export interface MerchantRow {
  id: string;
  name: string;
  default_expiry_seconds: number;
  monitoring_window_seconds: number;
  payment_tolerance_bps: number;
  default_speed_policy: SpeedPolicy;
  created_at: Date;
  updated_at: Date;
}

export function merchantFromRow(r: MerchantRow): Merchant {
  return {
    id: r.id,
    name: r.name,
    defaultExpirySeconds: r.default_expiry_seconds,
    monitoringWindowSeconds: r.monitoring_window_seconds,
    paymentToleranceBps: r.payment_tolerance_bps,
    defaultSpeedPolicy: r.default_speed_policy,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/**
 * What a merchant has set up to get paid: the chains with an active Bitcoin key source and the EVM
 * chains with a treasury (and the assets enabled there). Read together with the API key on every
 * authenticated request (one query), so creating an invoice needs no separate settings read.
 */
export interface MerchantPaymentSettings {
  /** Chain keys with an active Bitcoin key source. */
  bitcoin: string[];
  /** EVM chains with a treasury; `treasury` as stored (validated hex), `assets` enabled symbols. */
  evm: { chain: string; treasury: string; assets: string[] }[];
}

/**
 * SQL select-list columns `payment_bitcoin` and `payment_evm` for the merchant `k.merchant_id`
 * (the query must name a relation `k` with a `merchant_id` column). Ordered by chain so the result
 * is deterministic.
 */
export function paymentSettingsColumns(db: Db) {
  return db`
    array(select b.chain from bitcoin_key_sources b where b.merchant_id = k.merchant_id and b.active order by b.chain) as payment_bitcoin,
    (select coalesce(jsonb_agg(jsonb_build_object('chain', e.chain, 'treasury', e.treasury, 'assets', e.assets) order by e.chain), '[]'::jsonb)
       from merchant_evm_settings e where e.merchant_id = k.merchant_id) as payment_evm`;
}

export interface PaymentSettingsRow {
  payment_bitcoin: string[];
  payment_evm: MerchantPaymentSettings['evm'];
}

export const paymentSettingsFromRow = (r: PaymentSettingsRow): MerchantPaymentSettings => ({ bitcoin: r.payment_bitcoin, evm: r.payment_evm });

/** The merchant's payment settings (one query). */
export async function loadPaymentSettings(db: Db, merchantId: string): Promise<MerchantPaymentSettings> {
  const [row] = await db<PaymentSettingsRow[]>`select ${paymentSettingsColumns(db)} from (select ${merchantId}::text as merchant_id) k`;
  return paymentSettingsFromRow(row!);
}

export interface MerchantService {
  create(db: Db, input: { name: string }): Promise<Merchant>;
  get(db: Db, id: string): Promise<Merchant>;
  update(db: Db, id: string, patch: MerchantSettingsPatch): Promise<Merchant>;
}

export function createMerchantService(): MerchantService {
  return {
    async create(db, input) {
      const [row] = await db<MerchantRow[]>`
        insert into merchants (id, name) values (${newId('mer')}, ${input.name}) returning *`;
      return merchantFromRow(row!);
    },
    async get(db, id) {
      const [row] = await db<MerchantRow[]>`select * from merchants where id = ${id}`;
      if (!row) throw notFound('merchant', id);
      return merchantFromRow(row);
    },
    async update(db, id, patch) {
      const [row] = await db<MerchantRow[]>`
        update merchants set
          name = coalesce(${patch.name ?? null}, name),
          default_expiry_seconds = coalesce(${patch.defaultExpirySeconds ?? null}::int, default_expiry_seconds),
          monitoring_window_seconds = coalesce(${patch.monitoringWindowSeconds ?? null}::int, monitoring_window_seconds),
          payment_tolerance_bps = coalesce(${patch.paymentToleranceBps ?? null}::int, payment_tolerance_bps),
          default_speed_policy = coalesce(${patch.defaultSpeedPolicy ?? null}, default_speed_policy),
          updated_at = now()
        where id = ${id}
        returning *`;
      if (!row) throw notFound('merchant', id);
      return merchantFromRow(row);
    },
  };
}
