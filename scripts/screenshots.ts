/**
 * Renders the checkout page's main states in headless Chromium at phone and desktop sizes into
 * docs/images/checkout-<state>.png (desktop) and docs/images/checkout-<state>-phone.png, then the
 * browser-wallet flow into docs/images/wallet-<step>.png (and -phone.png).
 *
 *   npx tsx scripts/screenshots.ts            # everything
 *   npx tsx scripts/screenshots.ts wallet     # only the wallet flow
 *
 * Needs the local Postgres and Redis (a temporary database is created and dropped) and Chromium
 * (/usr/bin/chromium or CHROMIUM_PATH). Payments are fed to the settlement service the way the
 * chain watchers do (no chain node needed). The wallet flow runs a hardhat node with the Kassa
 * contracts and an injected EIP-6963 test wallet that forwards to it (as in
 * test/checkout/wallet-browser.test.ts), so the hash shown is of a real transaction.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestContext, type TestContext } from '../test/support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../test/support/merchant.ts';
import { launchBrowser, startTestServer, waitForImage } from '../test/support/browser.ts';
import { closeInvoiceUpdates } from '../src/checkout/updates.ts';
import type { InvoiceObject } from '../src/invoices/present.ts';
import { startWalletCheckout } from '../test/support/wallet-checkout.ts';

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

/** The injected EIP-6963 test wallet (page JavaScript); forwards to hardhat through __kassaRpc. */
const WALLET_SCRIPT = `function (cfg) {
  var w = window;
  var chain = cfg.step === 'switch' ? '0x1' : '0x7a69';
  var provider = {
    request: function (a) {
      var method = a.method, params = a.params || [];
      if (method === 'eth_requestAccounts' || method === 'eth_accounts') return Promise.resolve([cfg.account]);
      if (method === 'eth_chainId') return Promise.resolve(chain);
      if (method === 'wallet_switchEthereumChain') return new Promise(function () {}); // the wallet's prompt stays open for the picture
      if (method === 'eth_sendTransaction' && cfg.step === 'gone') return Promise.reject(new Error('Extension context invalidated.'));
      return w.__kassaRpc(method, params);
    },
    on: function () {},
    removeListener: function () {}
  };
  var detail = Object.freeze({ info: { uuid: '6f1b7c1e-0000-4000-8000-000000000009', name: 'Test Wallet', icon: 'data:,', rdns: 'test.kassa.wallet' }, provider: provider });
  function announce() { w.dispatchEvent(new CustomEvent('eip6963:announceProvider', { detail: detail })); }
  w.addEventListener('eip6963:requestProvider', announce);
  w.__vanish = function () { w.removeEventListener('eip6963:requestProvider', announce); };
  announce();
}`;

/**
 * The wallet flow: the "Pay with <wallet>" button, the switch-network step (the wallet starts on
 * another chain and its prompt is held open), the sent state with the hash, and a wallet that
 * disappeared mid-payment.
 */
async function walletShots(): Promise<void> {
  const w = await startWalletCheckout(
    { name: 'Hardhat devnet', explorer_tx_url: 'https://explorer.example/tx/{txid}', public_rpc_url: 'https://rpc.example/' },
    { LOG_LEVEL: 'warn' },
  );
  const { f, ctx, browser, server, shop } = w;
  try {
    const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
    const steps = ['offered', 'switch', 'sent', 'gone'] as const;
    for (const step of steps) {
      for (const [size, viewport] of Object.entries(SIZES)) {
        const inv = await ctx.deps.invoices.create(merchant, { amount: '25.00', currency: 'USD', description: '2 × flat white, 1 × croissant' } as never);
        const context = await browser.newContext({ viewport, deviceScaleFactor: size === 'phone' ? 2 : 1, locale: 'en-US' });
        await context.exposeFunction('__kassaRpc', async (method: string, params: unknown[]) => {
          const res = await fetch(f.node.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
          const body = (await res.json()) as { result?: unknown; error?: { message: string } };
          if (body.error) throw new Error(body.error.message);
          return body.result;
        });
        // A string, not a function: tsx's output would wrap the function's names in a helper the page lacks.
        await context.addInitScript({ content: `(${WALLET_SCRIPT})(${JSON.stringify({ step, account: f.node.accounts[0]!.address })})` });
        const page = await context.newPage();
        page.on('pageerror', (e) => console.error('page error:', e.message));
        await page.goto(`${server.url}/pay/${inv.id}?method=USDC-ethereum`);
        await waitForImage(page, '#qr');
        const button = page.locator('.wallet-button');
        await button.waitFor();
        if (step === 'gone') await page.evaluate('window.__vanish()');
        if (step !== 'offered') await button.click();
        const expected = { offered: null, switch: /^Switch Test Wallet/, sent: /^Sent from your wallet/, gone: /no longer available/ }[step];
        if (expected) {
          for (let i = 0; i < 100 && !expected.test(await page.locator('#wallet-status').innerText()); i++) await page.waitForTimeout(100);
        }
        await page.waitForTimeout(300);
        const out = path.join(OUT, `wallet-${step}${size === 'phone' ? '-phone' : ''}.png`);
        await page.screenshot({ path: out, fullPage: true });
        console.log(`wrote ${path.relative(process.cwd(), out)}`);
        await context.close();
      }
    }
  } finally {
    await w.close();
  }
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  if (process.argv[2] === 'wallet') return walletShots();
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
  await walletShots();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
