import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bitcoin from 'bitcoinjs-lib';
import { pbkdf2 } from '@noble/hashes/pbkdf2';
import { sha512 } from '@noble/hashes/sha2';
import { bip32 } from '../../src/chains/bitcoin/ecc.ts';
import { bitcoinNetwork } from '../../src/chains/bitcoin/networks.ts';
import { parseBitcoinKeySource, type BitcoinKeySource } from '../../src/chains/bitcoin/descriptor.ts';
import { deriveAddress } from '../../src/chains/bitcoin/derive.ts';
import {
  allocateBitcoinAddress,
  getBitcoinKeySource,
  INITIAL_POOL_SIZE,
  refillAddressPools,
  setBitcoinKeySource,
} from '../../src/chains/bitcoin/address-pool.ts';
import { createTestContext, type TestContext } from '../support/db.ts';

const SEED = pbkdf2(sha512, 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about', 'mnemonic', { c: 2048, dkLen: 64 });
const ROOT = bip32().fromSeed(SEED, bitcoinNetwork('testnet'));
const tpubAt = (account: number) => ROOT.derivePath(`m/84'/1'/${account}'`).neutered().toBase58();
const sourceFor = (account: number): BitcoinKeySource => parseBitcoinKeySource({ xpub: tpubAt(account), address_type: 'p2wpkh' }, 'regtest');

let ctx: TestContext;
let merchantId: string;

beforeAll(async () => {
  ctx = await createTestContext({ DB_POOL_SIZE: '20' });
  merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'Pool shop' })).id;
});

afterAll(async () => {
  await ctx?.close();
});

async function freeCount(sourceId: number): Promise<number> {
  const [r] = await ctx.deps.sql<{ n: bigint }[]>`select count(*)::bigint as n from bitcoin_address_pool where source_id = ${sourceId} and allocated_at is null`;
  return Number(r!.n);
}

describe('bitcoin address pool', () => {
  it('allocateBitcoinAddress returns null when the merchant has no key source', async () => {
    const other = await ctx.deps.merchants.create(ctx.deps.sql, { name: 'No keys' });
    expect(await ctx.deps.sql.begin((tx) => allocateBitcoinAddress(tx, other.id, 'bitcoin'))).toBeNull();
  });

  it('setBitcoinKeySource derives an initial pool whose addresses match the derivation', async () => {
    const source = sourceFor(0);
    const stored = await ctx.deps.sql.begin((tx) => setBitcoinKeySource(tx, merchantId, 'bitcoin', source));
    expect(stored.nextIndex).toBe(INITIAL_POOL_SIZE);
    expect(await freeCount(stored.id)).toBe(INITIAL_POOL_SIZE);
    const a = await ctx.deps.sql.begin((tx) => allocateBitcoinAddress(tx, merchantId, 'bitcoin'));
    expect(a).not.toBeNull();
    const expected = deriveAddress(source, 0);
    expect(a!.address).toBe(expected.address);
    expect(a!.address).toMatch(/^bcrt1q/);
    expect(Buffer.from(a!.script).toString('hex')).toBe(Buffer.from(bitcoin.address.toOutputScript(a!.address, bitcoin.networks.regtest)).toString('hex'));
    expect(a!.derivation).toEqual({ source_id: stored.id, index: 0, descriptor: source.descriptor });
  });

  it('200 concurrent allocations in separate transactions get 200 distinct addresses and indexes', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, () => ctx.deps.sql.begin((tx) => allocateBitcoinAddress(tx, merchantId, 'bitcoin'))),
    );
    expect(results.every((r) => r !== null)).toBe(true);
    const addresses = new Set(results.map((r) => r!.address));
    const indexes = new Set(results.map((r) => r!.derivation.index));
    expect(addresses.size).toBe(200);
    expect(indexes.size).toBe(200);
    expect(indexes.has(0)).toBe(false); // index 0 was handed out by the previous test
    // every address is the real derivation of its index
    const source = sourceFor(0);
    for (const r of results.slice(0, 20)) expect(r!.address).toBe(deriveAddress(source, r!.derivation.index).address);
    // the pool table agrees: 201 rows allocated, none twice
    const [row] = await ctx.deps.sql<{ n: bigint; d: bigint }[]>`
      select count(*)::bigint as n, count(distinct address)::bigint as d from bitcoin_address_pool where allocated_at is not null`;
    expect(Number(row!.n)).toBe(201);
    expect(Number(row!.d)).toBe(201);
  });

  it('falls back to inline derivation when the pool is empty, advancing next_index', async () => {
    const src = (await getBitcoinKeySource(ctx.deps.sql, merchantId, 'bitcoin'))!;
    expect(await freeCount(src.id)).toBe(0);
    const a = await ctx.deps.sql.begin((tx) => allocateBitcoinAddress(tx, merchantId, 'bitcoin'));
    expect(a!.derivation.index).toBe(src.nextIndex);
    expect(a!.address).toBe(deriveAddress(sourceFor(0), src.nextIndex).address);
    expect((await getBitcoinKeySource(ctx.deps.sql, merchantId, 'bitcoin'))!.nextIndex).toBe(src.nextIndex + 1);
  });

  it('a rolled-back allocation returns its address to the pool (nothing is lost, nothing reused)', async () => {
    await refillAddressPools(ctx.deps.sql, { minFree: 5, batch: 5 });
    const before = await ctx.deps.sql.begin((tx) => allocateBitcoinAddress(tx, merchantId, 'bitcoin'));
    await expect(
      ctx.deps.sql.begin(async (tx) => {
        await allocateBitcoinAddress(tx, merchantId, 'bitcoin');
        throw new Error('invoice creation failed');
      }),
    ).rejects.toThrow('invoice creation failed');
    const next = await ctx.deps.sql.begin((tx) => allocateBitcoinAddress(tx, merchantId, 'bitcoin'));
    expect(next!.derivation.index).toBe(before!.derivation.index + 1);
  });

  it('refillAddressPools tops up sources below minFree and leaves full ones alone', async () => {
    const src = (await getBitcoinKeySource(ctx.deps.sql, merchantId, 'bitcoin'))!;
    const r1 = await refillAddressPools(ctx.deps.sql, { minFree: 30, batch: 40 });
    expect(r1.derived).toBeGreaterThanOrEqual(40);
    expect(await freeCount(src.id)).toBeGreaterThanOrEqual(30);
    const r2 = await refillAddressPools(ctx.deps.sql, { minFree: 30, batch: 40 });
    expect(r2).toEqual({ sources: 0, derived: 0 });
    // concurrent refills never derive an index twice (primary key + next_index under the row lock)
    await ctx.deps.sql`update bitcoin_address_pool set allocated_at = now() where source_id = ${src.id} and allocated_at is null`;
    await Promise.all([1, 2, 3].map(() => refillAddressPools(ctx.deps.sql, { minFree: 10, batch: 10 })));
    const [row] = await ctx.deps.sql<{ n: bigint; d: bigint; max: number; next: number }[]>`
      select count(*)::bigint as n, count(distinct address)::bigint as d, max(derivation_index) as max,
             (select next_index from bitcoin_key_sources where id = ${src.id}) as next
      from bitcoin_address_pool where source_id = ${src.id}`;
    expect(row!.n).toBe(row!.d);
    expect(Number(row!.n)).toBe(row!.next);
    expect(row!.max).toBe(row!.next - 1);
  });

  it('replacing the key source keeps allocated addresses and starts the new source at index 0', async () => {
    const old = (await getBitcoinKeySource(ctx.deps.sql, merchantId, 'bitcoin'))!;
    const [{ n: allocatedBefore }] = (await ctx.deps.sql<{ n: bigint }[]>`
      select count(*)::bigint as n from bitcoin_address_pool where source_id = ${old.id} and allocated_at is not null`) as unknown as [{ n: bigint }];
    const replacement = sourceFor(1);
    const stored = await ctx.deps.sql.begin((tx) => setBitcoinKeySource(tx, merchantId, 'bitcoin', replacement));
    expect(stored.id).not.toBe(old.id);
    const a = await ctx.deps.sql.begin((tx) => allocateBitcoinAddress(tx, merchantId, 'bitcoin'));
    expect(a!.derivation).toEqual({ source_id: stored.id, index: 0, descriptor: replacement.descriptor });
    expect(a!.address).toBe(deriveAddress(replacement, 0).address);
    const sources = await ctx.deps.sql<{ id: bigint; active: boolean }[]>`
      select id, active from bitcoin_key_sources where merchant_id = ${merchantId} order by id`;
    expect(sources.map((s) => [Number(s.id), s.active])).toEqual([[old.id, false], [stored.id, true]]);
    const [{ n: allocatedAfter }] = (await ctx.deps.sql<{ n: bigint }[]>`
      select count(*)::bigint as n from bitcoin_address_pool where source_id = ${old.id} and allocated_at is not null`) as unknown as [{ n: bigint }];
    expect(allocatedAfter).toBe(allocatedBefore);
    // the old source's free rows are not handed out any more, and a refill ignores inactive sources
    await refillAddressPools(ctx.deps.sql, { minFree: 1000, batch: 10 });
    expect((await ctx.deps.sql<{ next_index: number }[]>`select next_index from bitcoin_key_sources where id = ${old.id}`)[0]!.next_index).toBe(old.nextIndex);
  });

  it('setting a key that was used before resumes its index sequence instead of reusing index 0', async () => {
    const first = sourceFor(0);
    const before = await ctx.deps.sql<{ max: number }[]>`
      select max(p.derivation_index) as max from bitcoin_address_pool p join bitcoin_key_sources s on s.id = p.source_id
      where s.merchant_id = ${merchantId} and s.source->>'xpub' = ${first.xpub} and p.allocated_at is not null`;
    const stored = await ctx.deps.sql.begin((tx) => setBitcoinKeySource(tx, merchantId, 'bitcoin', first));
    const a = await ctx.deps.sql.begin((tx) => allocateBitcoinAddress(tx, merchantId, 'bitcoin'));
    expect(a!.derivation.source_id).toBe(stored.id);
    expect(a!.derivation.index).toBeGreaterThan(before[0]!.max);
    const [{ n }] = (await ctx.deps.sql<{ n: bigint }[]>`
      select count(*)::bigint as n from bitcoin_key_sources where merchant_id = ${merchantId} and active`) as unknown as [{ n: bigint }];
    expect(Number(n)).toBe(1);
  });

  it('merchants do not share pools', async () => {
    const other = await ctx.deps.merchants.create(ctx.deps.sql, { name: 'Other shop' });
    await ctx.deps.sql.begin((tx) => setBitcoinKeySource(tx, other.id, 'bitcoin', sourceFor(5)));
    const a = await ctx.deps.sql.begin((tx) => allocateBitcoinAddress(tx, other.id, 'bitcoin'));
    expect(a!.address).toBe(deriveAddress(sourceFor(5), 0).address);
    expect(await ctx.deps.sql.begin((tx) => allocateBitcoinAddress(tx, other.id, 'testnet-btc'))).toBeNull();
  });
});
