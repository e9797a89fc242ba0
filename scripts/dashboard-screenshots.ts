/**
 * Renders the dashboard's overview, an invoice and the reconciliation page in headless Chromium
 * into docs/images/dashboard-overview.png, dashboard-invoice.png, dashboard-refund.png (an approved
 * EVM refund waiting to be sent) and dashboard-reconciliation.png.
 *
 *   npx tsx scripts/dashboard-screenshots.ts
 *
 * Needs the local Postgres and Redis (a temporary database is created and dropped) and Chromium
 * (/usr/bin/chromium or CHROMIUM_PATH). Demo data: a merchant with two weeks of invoices, paid the
 * way the chain watchers record payments (no chain node needed).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestContext, type TestContext } from '../test/support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../test/support/merchant.ts';
import { launchBrowser, startTestServer } from '../test/support/browser.ts';
import { closeInvoiceUpdates } from '../src/checkout/updates.ts';
import { createDashboardAuth } from '../src/dashboard/auth.ts';
import type { InvoiceObject } from '../src/invoices/present.ts';
import { refundServiceFor } from '../src/refunds/service.ts';
import { parseAmount } from '../src/money/amount.ts';

const OUT = fileURLToPath(new URL('../docs/images/', import.meta.url));
const PASSWORD = 'demo password for screenshots';
const USDC = '0x5fbdb2315678afecb367f032d93f642f64180aa3';

const tips: Record<string, number> = { bitcoin: 800_000, ethereum: 19_000_000 };
let txn = 0;

async function pay(ctx: TestContext, inv: InvoiceObject, method: 'BTC' | 'USDC-ethereum', amount: bigint, at: Date): Promise<void> {
  const chain = method === 'BTC' ? 'bitcoin' : 'ethereum';
  const address = inv.payment_methods.find((m) => m.method === method)!.address;
  const txid = (method === 'BTC' ? '' : '0x') + (++txn * 7919).toString(16).padStart(64, method === 'BTC' ? 'b' : 'e');
  const h = ++tips[chain]!;
  const block = { hash: `${chain}-${h}`.padEnd(64, '0'), height: h, time: at };
  const changed = await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.recordObservations(tx, chain, [
      { txid, outputIndex: method === 'BTC' ? 0 : 3, address: method === 'BTC' ? address : address.toLowerCase(), token: method === 'BTC' ? null : USDC, amount, block },
    ]);
    await ctx.deps.settlement.advanceCursor(tx, chain, { height: h, hash: block.hash, prevHash: `${chain}-${h - 1}`.padEnd(64, '0'), time: at }, 100);
    const waiting = await ctx.deps.settlement.awaitingConfirmations(tx, chain);
    return ctx.deps.settlement.recompute(tx, [...touched, ...waiting]);
  });
  await ctx.deps.settlement.publishChanges(changed);
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const chains = writeChainsFile();
  const json = JSON.parse(readFileSync(chains, 'utf8'));
  json.chains.bitcoin.explorer_tx_url = 'https://mempool.space/tx/{txid}';
  json.chains.ethereum.explorer_tx_url = 'https://etherscan.io/tx/{txid}';
  writeFileSync(chains, JSON.stringify(json));
  const ctx = await createTestContext({ KASSA_CONFIG: chains, LOG_LEVEL: 'warn' });
  const browser = await launchBrowser();
  const server = await startTestServer(ctx.deps);
  try {
    const shop = await createPayableMerchant(ctx.deps, { name: 'Corner Café' });
    const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
    const auth = createDashboardAuth({ sql: ctx.deps.sql, config: ctx.config, logger: ctx.deps.logger });
    const u = await auth.createUser(shop.merchant.id, { email: 'finance@corner-cafe.example', role: 'owner', createdBy: 'cli' });
    await auth.completeSetup(u.setupUrl.split('/').pop()!, PASSWORD, '127.0.0.1');

    // Two weeks of invoices: most paid (BTC or USDC), some expired, a partial payment, an overpayment.
    let detail: InvoiceObject | null = null;
    let order = 2000;
    const prices = ['12.50', '25.00', '8.90', '42.00', '19.99', '30.00', '64.00'];
    for (let day = 13; day >= 0; day--) {
      const count = 3 + ((day * 5) % 4);
      for (let i = 0; i < count; i++) {
        const amount = prices[(day + i) % prices.length]!;
        const inv = await ctx.deps.invoices.create(merchant, { amount, currency: 'USD', order_id: `order-${++order}`, description: 'Coffee beans' } as never);
        const created = new Date(Date.now() - day * 86_400_000 - (i + 1) * 3_600_000);
        const kind = (day + i) % 9;
        const btc = inv.payment_methods.find((m) => m.method === 'BTC')!;
        const usdc = inv.payment_methods.find((m) => m.method === 'USDC-ethereum')!;
        const base = (s: string, d: number) => parseAmount(s, d);
        if (kind === 0 || kind === 5) {
          await ctx.deps.sql`update invoices set expires_at = now() - interval '1 second' where id = ${inv.id}`;
          await ctx.deps.invoices.get(shop.merchant.id, inv.id); // recomputes: expired
        } else if (kind % 2 === 0) {
          await pay(ctx, inv, 'USDC-ethereum', base(usdc.amount_due, 6) + (kind === 4 ? 1_000_000n : 0n), new Date());
        } else {
          await pay(ctx, inv, 'BTC', base(btc.amount_due, 8), new Date());
        }
        // Spread the history over the days (created at, settled a few minutes later).
        await ctx.deps.sql`
          update invoices set created_at = ${created}, settled_at = case when settled_at is not null then ${new Date(created.getTime() + (4 + ((i * 7) % 20)) * 60_000)} end
          where id = ${inv.id}`;
        await ctx.deps.sql`update payments set first_seen_at = ${new Date(created.getTime() + 120_000)} where invoice_id = ${inv.id}`;
      }
    }
    // The invoice shown in detail: a partial payment, now.
    detail = await ctx.deps.invoices.create(merchant, { amount: '30.00', currency: 'USD', order_id: 'order-3001', description: '1 kg espresso beans' } as never);
    await pay(ctx, detail, 'BTC', parseAmount(detail.payment_methods.find((m) => m.method === 'BTC')!.amount_due, 8) / 2n, new Date());
    await pay(ctx, detail, 'USDC-ethereum', 5_000_000n, new Date());
    // One expired invoice paid late (an unmatched payment in the reconciliation).
    const late = await ctx.deps.invoices.create(merchant, { amount: '15.00', currency: 'USD', order_id: 'order-late' } as never);
    await ctx.deps.sql`update invoices set expires_at = now() - interval '1 second' where id = ${late.id}`;
    await ctx.deps.invoices.get(shop.merchant.id, late.id);
    const lateBtc = late.payment_methods.find((m) => m.method === 'BTC')!;
    await pay(ctx, late, 'BTC', parseAmount(lateBtc.amount, 8), new Date());
    // An invoice overpaid in USDC with its refund claimed by the customer and approved: waiting to be sent.
    const over = await ctx.deps.invoices.create(merchant, { amount: '30.00', currency: 'USD', order_id: 'order-3002', description: '2 kg filter beans' } as never);
    await pay(ctx, over, 'USDC-ethereum', 35_000_000n, new Date());
    const refunds = refundServiceFor(ctx.deps);
    const refund = await refunds.create(shop.merchant.id, over.id, { amount: 'overpaid', reason: 'Paid $5 too much' });
    await refunds.claim(new URL(refund.claim_url!).pathname.split('/').pop()!, '0x8ba1f109551bD432803012645Ac136ddd64DBA72');
    await refunds.approve(shop.merchant.id, refund.id);

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    await page.goto(`${server.url}/dashboard/login`);
    await page.fill('#email', 'finance@corner-cafe.example');
    await page.fill('#password', PASSWORD);
    await page.click('#sign-in');
    await page.waitForURL(`${server.url}/dashboard`);
    await page.goto(`${server.url}/dashboard?days=30`);
    const shots: [string, string][] = [
      ['overview', '/dashboard?days=30'],
      ['invoice', `/dashboard/invoices/${detail!.id}`],
      ['refund', `/dashboard/invoices/${over.id}`],
      ['reconciliation', `/dashboard/reconciliation?from=${new Date(Date.now() - 14 * 86_400_000).toISOString().slice(0, 10)}&to=${new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)}`],
    ];
    for (const [name, url] of shots) {
      await page.goto(`${server.url}${url}`);
      const file = path.join(OUT, `dashboard-${name}.png`);
      await page.screenshot({ path: file, fullPage: name !== 'reconciliation' });
      console.log(`wrote ${path.relative(process.cwd(), file)}`);
    }
    await context.close();
  } finally {
    await browser.close();
    await server.close();
    await closeInvoiceUpdates(ctx.deps);
    await ctx.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
