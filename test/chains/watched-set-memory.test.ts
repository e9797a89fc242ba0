/**
 * Memory per watched address of the watched set (src/chains/watched-set.ts) and of the Bitcoin
 * adapter's matching structures, after a full garbage collection. At 1,000,000 open invoices every
 * byte per address is a megabyte: the target is a heap ≤ 400 MB (bench:watch-scale), of which the
 * rest of the worker process takes ~35 MB, so ≤ 360 bytes per Bitcoin address in all. The bounds
 * (≤ 200 in the set, ≤ 130 in the adapter) are what the columnar storage (src/chains/byte-table.ts)
 * holds with growth room; the previous layout (an object, two strings, a typed-array view and two
 * map entries per address) took ~330 and ~160. They also catch the regressions found earlier: the
 * rows of the full load kept alive by the database client after the load (~400 bytes per
 * address), scripts copied one ArrayBuffer each (~170), script keys built by string concatenation
 * (~500). Addresses and invoice ids have their real lengths (44-character bech32, 26-character id).
 */
import { createHash } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createWatchedSet } from '../../src/chains/watched-set.ts';
import { createBitcoinAdapter } from '../../src/chains/bitcoin/adapter.ts';
import type { BitcoinChainConfig } from '../../src/config.ts';
import type { BitcoinNodeClient } from '../../src/chains/bitcoin/types.ts';
import { randomBase62 } from '../../src/ids.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const used = (): number => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

const N = 100_000;
let ctx: TestContext;
let chain: string;

beforeAll(async () => {
  ctx = await createTestContext();
  const merchantId = (await ctx.deps.merchants.create(ctx.deps.sql, { name: 'Memory shop' })).id;
  chain = `btc_${randomBase62(6).toLowerCase()}`;
  // Invoice ids as newId('inv') makes them: inv_ + 22 characters.
  const p = `inv_${randomBase62(14)}`;
  await ctx.deps.sql`
    insert into invoices (id, merchant_id, amount, currency, currency_decimals, speed_policy, tolerance_bps, expires_at, monitoring_until)
    select ${p} || lpad(g::text, 8, '0'), ${merchantId}, 100, 'USD', 2, 'medium', 0, now() + interval '15 minutes', now() + interval '1 day'
    from generate_series(1, ${N}) g`;
  await ctx.deps.sql`
    insert into deposit_addresses (chain, address, invoice_id, merchant_id, script)
    select ${chain}, 'bcrt1q' || substring(encode(sha256(('a' || g)::bytea), 'hex') from 1 for 38), ${p} || lpad(g::text, 8, '0'), ${merchantId},
           '\\x0014'::bytea || substring(sha256(g::text::bytea) from 1 for 20)
    from generate_series(1, ${N}) g`;
}, 120_000);
afterAll(async () => ctx?.close());

describe('watched set memory', () => {
  it(`holds ${N.toLocaleString('en')} Bitcoin addresses in ≤ 200 bytes each, and the adapter's script set in ≤ 130 more`, async () => {
    const before = used();
    const w = createWatchedSet({ sql: ctx.deps.sql, chain });
    let delta: Awaited<ReturnType<typeof w.refresh>> | null = await w.refresh();
    expect(delta.full).toBe(true);
    expect(w.size).toBe(N);
    const adapter = createBitcoinAdapter({
      chain, config: { type: 'bitcoin', network: 'regtest', reorg_window: 10, poll_interval_ms: 1000 } as unknown as BitcoinChainConfig,
      client: { name: 'unused', kind: 'esplora' } as unknown as BitcoinNodeClient, logger: ctx.deps.logger,
    });
    const afterSet = used() - before;
    adapter.watch(delta, w.size);
    delta = null;
    const afterAdapter = used() - before;
    const setPerAddress = afterSet / N;
    const adapterPerAddress = (afterAdapter - afterSet) / N;
    console.log(`[watched set memory] ${N} addresses: watched set ${setPerAddress.toFixed(0)} B each (with the full delta), adapter ${adapterPerAddress.toFixed(0)} B each`);
    expect(setPerAddress).toBeLessThan(200);
    expect(adapterPerAddress).toBeLessThan(130);
    const row = w.get(`bcrt1q${createHash('sha256').update('a1').digest('hex').slice(0, 38)}`);
    expect(row?.script).toHaveLength(22);
    expect(row?.invoiceId).toMatch(/^inv_[0-9A-Za-z]{22}$/);
    void adapter;
  }, 120_000);
});
