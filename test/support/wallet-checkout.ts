/**
 * The checkout with a browser wallet, for the Chromium wallet tests: a hardhat node with the Kassa
 * contracts and the test tokens, a chains file whose `ethereum` entry gets `ethereum` merged in, a
 * real server for an EVM-only merchant, and headless Chromium.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { closeInvoiceUpdates } from '../../src/checkout/updates.ts';
import type { PublicInvoice } from '../../src/checkout/public-invoice.ts';
import { createTestContext, type TestContext } from './db.ts';
import { createPayableMerchant, writeChainsFile } from './merchant.ts';
import { launchBrowser, startTestServer, type TestServer } from './browser.ts';
import { setupContractsFixture, type ContractsFixture } from '../contracts/fixture.ts';

export interface WalletCheckout {
  f: ContractsFixture;
  ctx: TestContext;
  server: TestServer;
  browser: Browser;
  shop: Awaited<ReturnType<typeof createPayableMerchant>>;
  /** A new USD 25.00 invoice, as the checkout page reads it. */
  invoice(): Promise<PublicInvoice>;
  close(): Promise<void>;
}

export async function startWalletCheckout(ethereum: Record<string, unknown>, env: Record<string, string> = {}): Promise<WalletCheckout> {
  const f = await setupContractsFixture();
  const file = writeChainsFile({ evmRpcUrl: f.node.url, factory: f.contracts.factory, implementation: f.contracts.implementation, usdc: f.contracts.testUsdc, usdt: f.contracts.testUsdt });
  const json = JSON.parse(readFileSync(file, 'utf8'));
  Object.assign(json.chains.ethereum, ethereum);
  writeFileSync(file, JSON.stringify(json));
  const ctx = await createTestContext({ KASSA_CONFIG: file, ...env });
  const shop = await createPayableMerchant(ctx.deps, { name: 'Corner Café', bitcoin: false });
  const server = await startTestServer(ctx.deps);
  const browser = await launchBrowser();
  return {
    f, ctx, server, browser, shop,
    async invoice() {
      const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
      const inv = await ctx.deps.invoices.create(merchant, { amount: '25.00', currency: 'USD' } as never);
      return (await (await fetch(`${server.url}/v1/public/invoices/${inv.id}`)).json()) as PublicInvoice;
    },
    async close() {
      await browser.close();
      await server.close();
      await closeInvoiceUpdates(ctx.deps);
      await ctx.close();
      await f.node.stop();
    },
  };
}
