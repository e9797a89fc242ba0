import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { startDevnetProcess } from '../support/devnet.ts';
import { createBitcoinNodeClient } from '../../src/chains/bitcoin/client.ts';
import { createBitcoinWatcher } from '../support/watchers.ts';
import { reverifyPayments } from '../../src/settlement/reverify.ts';
import type { BitcoinChainConfig } from '../../src/config.ts';

let devnet: Awaited<ReturnType<typeof startDevnetProcess>>;
let ctx: TestContext;

beforeAll(async () => {
  devnet = await startDevnetProcess();
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile({ bitcoinRpc: { url: devnet.rpcUrl, user: devnet.rpcUser, password: devnet.rpcPassword } }) });
});
afterAll(async () => {
  await ctx?.close();
  await devnet?.stop();
});

describe('payment re-verification', () => {
  it('verifies counted payments against the node and flags a payment whose block left the best chain or whose amount differs', async () => {
    const cfg = ctx.config.chains.bitcoin as BitcoinChainConfig;
    const client = createBitcoinNodeClient(cfg, 'bitcoin');
    const watcher = createBitcoinWatcher({
      chain: 'bitcoin', config: cfg, client, sql: ctx.deps.sql, settlement: ctx.deps.settlement,
      redis: ctx.deps.redis, queuePrefix: ctx.config.queuePrefix, logger: ctx.deps.logger,
    });
    await watcher.runOnce();
    const shop = await createPayableMerchant(ctx.deps, { evmAssets: null });
    const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
    const a = await ctx.deps.invoices.create(merchant, { amount: '30.00', currency: 'USD' } as never);
    const b = await ctx.deps.invoices.create(merchant, { amount: '30.00', currency: 'USD' } as never);
    await devnet.wallet.sendToAddress(a.payment_methods[0]!.address, a.payment_methods[0]!.amount_due);
    await devnet.wallet.mine(1);
    await devnet.wallet.sendToAddress(b.payment_methods[0]!.address, b.payment_methods[0]!.amount_due);
    const [blockB] = await devnet.wallet.mine(1);
    await watcher.runOnce();

    const vdeps = { sql: ctx.deps.sql, logger: ctx.deps.logger, chains: ctx.config.chains, publicUrl: ctx.config.publicUrl };
    expect(await reverifyPayments(vdeps, 'bitcoin', watcher.adapter)).toEqual({ checked: 2, mismatches: 0 });
    const verified = await ctx.deps.sql`select verified_at, mismatch from payments`;
    expect(verified.every((r) => r.verified_at !== null && r.mismatch === null)).toBe(true);

    // The recorded amount of A no longer matches the chain (tampering or a bug).
    await ctx.deps.sql`update payments set amount = amount + 1, verified_at = null where invoice_id = ${a.id}`;
    // B's block leaves the best chain without the watcher noticing yet.
    await devnet.wallet.invalidateBlock(blockB!);
    await ctx.deps.sql`update payments set verified_at = null where invoice_id = ${b.id}`;
    expect(await reverifyPayments(vdeps, 'bitcoin', watcher.adapter)).toEqual({ checked: 2, mismatches: 2 });
    const rows = await ctx.deps.sql<{ invoice_id: string; mismatch: string }[]>`select invoice_id, mismatch from payments`;
    expect(rows.find((r) => r.invoice_id === a.id)!.mismatch).toMatch(/pays \d+ sat, recorded \d+/);
    expect(rows.find((r) => r.invoice_id === b.id)!.mismatch).toMatch(/no longer in the node's best chain/);
    const events = await ctx.deps.sql<{ payload: { object: { id: string; object: string }; payment: Record<string, unknown> } }[]>`
      select payload from events where type = 'invoice.payment_mismatch' order by seq`;
    expect(events).toHaveLength(2);
    // The event's shape: the invoice as usual, plus the payment with what did not match.
    for (const e of events) {
      expect(Object.keys(e.payload).sort()).toEqual(['object', 'payment']);
      expect(e.payload.object.object).toBe('invoice');
      expect(Object.keys(e.payload.payment).sort()).toEqual(['block_height', 'chain', 'id', 'method', 'mismatch', 'output_index', 'status', 'txid']);
    }
    // Re-running does not repeat the event for an unchanged mismatch.
    await ctx.deps.sql`update payments set verified_at = null`;
    await reverifyPayments(vdeps, 'bitcoin', watcher.adapter);
    expect(await ctx.deps.sql`select 1 from events where type = 'invoice.payment_mismatch'`).toHaveLength(2);
  });
});
