/** Merchants and their settings. */
import type { Db } from '../db/client.ts';
import { newId } from '../ids.ts';
import { notFound } from '../errors.ts';

export type SpeedPolicy = 'high' | 'medium' | 'low_medium' | 'low';
export const SPEED_POLICIES: readonly SpeedPolicy[] = ['high', 'medium', 'low_medium', 'low'];

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
