/**
 * The Bitcoin address pool (docs/architecture.md §5): receive addresses derived ahead of time from the
 * merchant's public key source, so creating an invoice only takes a row from a table.
 *
 * - `setBitcoinKeySource` stores a (new) key source for a merchant and chain, deactivating the
 *   previous one, and derives a first small pool synchronously so the first invoices work.
 *   Addresses already handed out stay valid: they live in `deposit_addresses`.
 *   Setting the same key (same xpub and address type) again reactivates its row, so its index
 *   sequence continues: an index is never handed out twice.
 * - `allocateBitcoinAddress` takes the lowest free index of the active source, atomically and
 *   concurrency safe (`for update skip locked`); when the pool is empty it derives one address
 *   inline under a row lock on the source (advancing `next_index`).
 * - `refillAddressPools` tops every active source up (run it from a repeatable job).
 */
import type { Db, Sql, TxSql } from '../../db/client.ts';
import { KassaError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { BitcoinKeySource } from './descriptor.ts';
import { deriveAddresses, MAX_ADDRESS_INDEX } from './derive.ts';

/** Addresses derived synchronously when a key source is set. */
export const INITIAL_POOL_SIZE = 20;

export interface BitcoinDerivation {
  source_id: number;
  index: number;
  descriptor: string;
}

export interface AllocatedBitcoinAddress {
  address: string;
  script: Uint8Array;
  derivation: BitcoinDerivation;
}

export interface StoredBitcoinKeySource {
  id: number;
  merchantId: string;
  chain: string;
  descriptor: string;
  source: BitcoinKeySource;
  nextIndex: number;
  createdAt: Date;
}

interface SourceRow {
  id: bigint;
  merchant_id: string;
  chain: string;
  descriptor: string;
  source: BitcoinKeySource;
  next_index: number;
  created_at: Date;
}

const toStored = (r: SourceRow): StoredBitcoinKeySource => ({
  id: Number(r.id),
  merchantId: r.merchant_id,
  chain: r.chain,
  descriptor: r.descriptor,
  source: r.source,
  nextIndex: r.next_index,
  createdAt: r.created_at,
});

function indexExhausted(sourceId: bigint | number): KassaError {
  return new KassaError('address_index_exhausted', `Bitcoin key source ${sourceId} has used every non-hardened index; set a new key source.`, {
    status: 422,
    retryable: false,
  });
}

/**
 * Derives `count` addresses from `next_index` and inserts them into the pool (free, or the first one
 * allocated when `allocateFirst`), advancing `next_index`. The caller holds the source row lock.
 */
async function deriveInto(tx: TxSql, sourceId: bigint, source: BitcoinKeySource, from: number, count: number, allocateFirst = false): Promise<AllocatedBitcoinAddress[]> {
  const n = Math.min(count, MAX_ADDRESS_INDEX - from);
  if (n <= 0) throw indexExhausted(sourceId);
  const derived = deriveAddresses(source, from, n);
  const rows = derived.map((d, i) => ({
    source_id: sourceId.toString(),
    derivation_index: d.index,
    address: d.address,
    script: Buffer.from(d.scriptPubKey),
    allocated_at: allocateFirst && i === 0 ? new Date() : null,
  }));
  // Postgres allows 65,535 parameters per statement: insert in chunks (5 columns per row).
  for (let i = 0; i < rows.length; i += 5000) {
    const chunk = rows.slice(i, i + 5000);
    await tx`insert into bitcoin_address_pool ${tx(chunk, 'source_id', 'derivation_index', 'address', 'script', 'allocated_at')} on conflict do nothing`;
  }
  await tx`update bitcoin_key_sources set next_index = greatest(next_index, ${from + n}) where id = ${sourceId}`;
  return derived.map((d) => ({ address: d.address, script: d.scriptPubKey, derivation: { source_id: Number(sourceId), index: d.index, descriptor: source.descriptor } }));
}

/**
 * Makes `source` the merchant's active Bitcoin key source on `chain` (the previous one is
 * deactivated; its handed-out addresses stay valid) and derives the first `INITIAL_POOL_SIZE`
 * addresses. The same key set again (same xpub and address type) reactivates its existing row,
 * so its indexes continue where they stopped instead of starting over at 0.
 */
export async function setBitcoinKeySource(tx: TxSql, merchantId: string, chain: string, source: BitcoinKeySource): Promise<StoredBitcoinKeySource> {
  // Serialise key changes per merchant (the merchant row is the natural lock).
  await tx`select id from merchants where id = ${merchantId} for update`;
  const existing = await tx<SourceRow[]>`
    select * from bitcoin_key_sources
    where merchant_id = ${merchantId} and chain = ${chain}
      and source->>'xpub' = ${source.xpub} and source->>'address_type' = ${source.address_type} and source->>'network' = ${source.network}
    order by active desc, id desc limit 1 for update`;
  const same = existing[0];
  await tx`update bitcoin_key_sources set active = false where merchant_id = ${merchantId} and chain = ${chain} and active and id <> ${same?.id ?? -1n}`;
  const rows = same
    ? await tx<SourceRow[]>`
        update bitcoin_key_sources set active = true, descriptor = ${source.descriptor}, source = ${tx.json(source)}
        where id = ${same.id} returning *`
    : await tx<SourceRow[]>`
        insert into bitcoin_key_sources (merchant_id, chain, descriptor, source)
        values (${merchantId}, ${chain}, ${source.descriptor}, ${tx.json(source)}) returning *`;
  let row = rows[0]!;
  const [{ free } = { free: 0n }] = await tx<{ free: bigint }[]>`
    select count(*)::bigint as free from bitcoin_address_pool where source_id = ${row.id} and allocated_at is null`;
  const missing = INITIAL_POOL_SIZE - Number(free);
  if (missing > 0) {
    await deriveInto(tx, row.id, source, row.next_index, missing);
    row = { ...row, next_index: row.next_index + missing };
  }
  return toStored(row);
}

/** The merchant's active key source on `chain`, or null. */
export async function getBitcoinKeySource(db: Db, merchantId: string, chain: string): Promise<StoredBitcoinKeySource | null> {
  const [row] = await db<SourceRow[]>`select * from bitcoin_key_sources where merchant_id = ${merchantId} and chain = ${chain} and active`;
  return row ? toStored(row) : null;
}

/**
 * Hands out the next unused receive address of the merchant's active key source, or null when the
 * merchant has no active source on `chain`. Concurrency safe: parallel transactions never get the
 * same row (`for update skip locked`) and an index is never reused. Call it inside the transaction
 * that stores the deposit address, so a rollback returns nothing to the pool (the row stays
 * allocated only if the transaction commits).
 */
export async function allocateBitcoinAddress(tx: TxSql, merchantId: string, chain: string): Promise<AllocatedBitcoinAddress | null> {
  const [taken] = await tx<{ source_id: bigint; derivation_index: number; address: string; script: Buffer; descriptor: string }[]>`
    update bitcoin_address_pool p set allocated_at = now()
    from bitcoin_key_sources s
    where s.id = p.source_id
      and (p.source_id, p.derivation_index) = (
        select f.source_id, f.derivation_index from bitcoin_address_pool f
        where f.source_id = (select id from bitcoin_key_sources where merchant_id = ${merchantId} and chain = ${chain} and active)
          and f.allocated_at is null
        order by f.derivation_index limit 1
        for update skip locked)
    returning p.source_id, p.derivation_index, p.address, p.script, s.descriptor`;
  if (taken) {
    return {
      address: taken.address,
      script: new Uint8Array(taken.script),
      derivation: { source_id: Number(taken.source_id), index: taken.derivation_index, descriptor: taken.descriptor },
    };
  }
  // Empty pool (or every free row is being taken right now): derive inline under the source lock.
  const [src] = await tx<SourceRow[]>`
    select * from bitcoin_key_sources where merchant_id = ${merchantId} and chain = ${chain} and active for update`;
  if (!src) return null;
  const [first] = await deriveInto(tx, src.id, src.source, src.next_index, 1, true);
  return first!;
}

export interface RefillResult {
  /** Sources that were topped up. */
  sources: number;
  /** Addresses derived in total. */
  derived: number;
}

/**
 * Tops up every active key source whose free addresses fell below `minFree` by deriving `batch`
 * more (at least enough to reach `minFree`). One short transaction per source; a source another
 * refiller is working on is skipped. Meant for a repeatable job, off the request path.
 */
export async function refillAddressPools(
  sql: Sql,
  opts: { minFree?: number; batch?: number; logger?: Logger } = {},
): Promise<RefillResult> {
  const minFree = opts.minFree ?? 50;
  const batch = opts.batch ?? 200;
  const low = await sql<{ id: bigint; free: bigint }[]>`
    select s.id, count(p.derivation_index) filter (where p.allocated_at is null)::bigint as free
    from bitcoin_key_sources s left join bitcoin_address_pool p on p.source_id = s.id
    where s.active
    group by s.id
    having count(p.derivation_index) filter (where p.allocated_at is null) < ${minFree}`;
  const result: RefillResult = { sources: 0, derived: 0 };
  for (const { id } of low) {
    const derived = await sql.begin(async (tx) => {
      const [src] = await tx<SourceRow[]>`select * from bitcoin_key_sources where id = ${id} and active for update skip locked`;
      if (!src) return 0;
      const [{ free } = { free: 0n }] = await tx<{ free: bigint }[]>`
        select count(*)::bigint as free from bitcoin_address_pool where source_id = ${id} and allocated_at is null`;
      if (Number(free) >= minFree) return 0;
      const count = Math.max(batch, minFree - Number(free));
      if (src.next_index >= MAX_ADDRESS_INDEX) return 0;
      return (await deriveInto(tx, src.id, src.source, src.next_index, count)).length;
    });
    if (derived > 0) {
      result.sources++;
      result.derived += derived;
    }
  }
  if (result.derived > 0) opts.logger?.info({ sources: result.sources, derived: result.derived }, 'bitcoin address pools refilled');
  return result;
}
