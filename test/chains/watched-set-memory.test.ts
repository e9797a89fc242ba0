/**
 * Memory per watched address of the watched set (src/chains/watched-set.ts) and of the Bitcoin
 * adapter's matching structures, after a full garbage collection. At 1,000,000 open invoices every
 * byte per address is a megabyte (target: heap ≤ 400 MB, bench:watch-scale). The bounds catch
 * the regressions found by that benchmark: the rows of the full load kept alive by the database
 * client after the load (~400 bytes per address), scripts copied one ArrayBuffer each (~170), and
 * script keys built by string concatenation (~500).
 */
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
  const p = `inv_${randomBase62(6)}_`;
  await ctx.deps.sql`
    insert into invoices (id, merchant_id, amount, currency, currency_decimals, speed_policy, tolerance_bps, expires_at, monitoring_until)
    select ${p} || g, ${merchantId}, 100, 'USD', 2, 'medium', 0, now() + interval '15 minutes', now() + interval '1 day'
    from generate_series(1, ${N}) g`;
  await ctx.deps.sql`
    insert into deposit_addresses (chain, address, invoice_id, merchant_id, script)
    select ${chain}, 'bcrt1qmem' || g, ${p} || g, ${merchantId}, '\\x0014'::bytea || substring(sha256(g::text::bytea) from 1 for 20)
    from generate_series(1, ${N}) g`;
}, 120_000);
afterAll(async () => ctx?.close());

describe('watched set memory', () => {
  it(`holds ${N.toLocaleString('en')} Bitcoin addresses in ≤ 400 bytes each, and the adapter's script set in ≤ 250 more`, async () => {
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
    expect(setPerAddress).toBeLessThan(400);
    expect(adapterPerAddress).toBeLessThan(250);
    expect(w.get('bcrt1qmem1')?.script).toHaveLength(22);
    void adapter;
  }, 120_000);
});
