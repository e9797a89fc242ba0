/**
 * Renders the checkout page's main states in headless Chromium at phone and desktop sizes into
 * docs/images/checkout-<state>.png (desktop) and docs/images/checkout-<state>-phone.png.
 *
 *   npx tsx scripts/screenshots.ts
 *
 * Needs the local Postgres and Redis (a temporary database is created and dropped) and Chromium
 * (/usr/bin/chromium or CHROMIUM_PATH). Payments are fed to the settlement service the way the
 * chain watchers do (no chain node needed).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestContext, type TestContext } from '../test/support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../test/support/merchant.ts';
import { launchBrowser, startTestServer, waitForImage } from '../test/support/browser.ts';
import { closeInvoiceUpdates } from '../src/checkout/updates.ts';
import type { InvoiceObject } from '../src/invoices/present.ts';

const OUT = fileURLToPath(new URL('../docs/images/', import.meta.url));
const SIZES = { desktop: { width: 1280, height: 1000 }, phone: { width: 390, height: 844 } } as const;

let tip = 100;
let txn = 0;

async function feed(ctx: TestContext, inv: InvoiceObject, sats: bigint, confirmed: boolean): Promise<void> {
  const address = inv.payment_methods.find((m) => m.method === 'BTC')!.address;
  const txid = (++txn).toString(16).padStart(64, 'a');
  const height = ++tip;
  const block = confirmed ? { hash: `b${height}`.padEnd(64, '0'), height, time: new Date() } : null;
  const changed = await ctx.deps.sql.begin(async (tx) => {
    const touched = await ctx.deps.settlement.recordObservations(tx, 'bitcoin', [{ txid, outputIndex: 0, address, token: null, amount: sats, block }]);
    if (block) await ctx.deps.settlement.advanceCursor(tx, 'bitcoin', { height, hash: block.hash, prevHash: `b${height - 1}`.padEnd(64, '0'), time: block.time }, 100);
    return ctx.deps.settlement.recompute(tx, touched);
  });
  await ctx.deps.settlement.publishChanges(changed);
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile(), LOG_LEVEL: 'warn' });
  const browser = await launchBrowser();
  const server = await startTestServer(ctx.deps);
  try {
    const shop = await createPayableMerchant(ctx.deps, { name: 'Corner Café' });
    const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
    const create = (extra: Record<string, unknown> = {}) =>
      ctx.deps.invoices.create(merchant, { amount: '25.00', currency: 'USD', description: '2 × flat white, 1 × croissant', ...extra } as never);

    const waiting = await create();
    const partial = await create();
    await feed(ctx, partial, 20_000n, true);
    const detected = await create();
    await feed(ctx, detected, 41_667n, false);
    const paid = await create({ redirect_url: 'https://shop.example/thanks' });
    await feed(ctx, paid, 41_667n, true);
    const expired = await create();
    await ctx.deps.sql`update invoices set expires_at = now() - interval '1 second' where id = ${expired.id}`;
    const zh = await create({ locale: 'zh-CN' });

    const shots: [string, string][] = [
      ['waiting', `/pay/${waiting.id}`],
      ['usdc', `/pay/${waiting.id}?method=USDC-ethereum`],
      ['partial', `/pay/${partial.id}`],
      ['detected', `/pay/${detected.id}`],
      ['paid', `/pay/${paid.id}`],
      ['expired', `/pay/${expired.id}`],
      ['zh-CN', `/pay/${zh.id}`],
      ['not-found', '/pay/inv_0000000000000000000000'],
    ];
    for (const [state, url] of shots) {
      for (const [size, viewport] of Object.entries(SIZES)) {
        const context = await browser.newContext({ viewport, deviceScaleFactor: size === 'phone' ? 2 : 1, locale: 'en-US' });
        const page = await context.newPage();
        await page.goto(`${server.url}${url}`);
        if (await page.locator('#qr').isVisible()) await waitForImage(page, '#qr');
        await page.waitForTimeout(400); // let the script render and the SSE connect
        const file = path.join(OUT, `checkout-${state}${size === 'phone' ? '-phone' : ''}.png`);
        await page.screenshot({ path: file, fullPage: true });
        console.log(`wrote ${path.relative(process.cwd(), file)}`);
        await context.close();
      }
    }
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
