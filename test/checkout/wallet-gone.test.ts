/**
 * The injected wallet disappears in the middle of a payment (extension disabled or removed), in
 * real headless Chromium against a real server and a hardhat node. The test wallet is an EIP-6963
 * provider forwarding to hardhat, as in wallet-browser.test.ts, that vanishes at the moment the page
 * asks it to send: its announcement is withdrawn (it no longer answers `eip6963:requestProvider`)
 * and, depending on the case, its request throws the way a disabled extension's does, fails with a
 * generic error, or never answers while the provider emits EIP-1193 `disconnect`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import type { Address } from 'viem';
import type { PublicInvoice } from '../../src/checkout/public-invoice.ts';
import type { TestContext } from '../support/db.ts';
import type { createPayableMerchant } from '../support/merchant.ts';
import type { TestServer } from '../support/browser.ts';
import { startWalletCheckout, type WalletCheckout } from '../support/wallet-checkout.ts';
import { axeViolations } from '../support/axe.ts';
import type { ContractsFixture } from '../contracts/fixture.ts';

let f: ContractsFixture;
let ctx: TestContext;
let server: TestServer;
let browser: Browser;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;

let w: WalletCheckout;

beforeAll(async () => {
  w = await startWalletCheckout({ name: 'Devnet' });
  ({ f, ctx, server, browser, shop } = w);
}, 120_000);

afterAll(async () => {
  await w?.close();
});

const invoice = () => w.invoice();

/**
 * How the wallet vanishes when asked to send:
 * - `disabled`: the request throws what a disabled extension's provider throws;
 * - `withdrawn`: a generic JSON-RPC error; only the missing re-announcement tells it is gone;
 * - `hangs`: the request never answers; the provider emits `disconnect`;
 * - `removed`: already before the click, its `request` function is gone.
 */
type Vanish = 'disabled' | 'withdrawn' | 'hangs' | 'removed';

async function openPage(path: string, vanish: Vanish, locale = 'en-US', bypassCSP = false) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale, bypassCSP });
  const errors: string[] = [];
  await context.exposeFunction('__kassaRpc', async (method: string, params: unknown[]) => {
    const res = await fetch(f.node.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
    const body = (await res.json()) as { result?: unknown; error?: { message: string } };
    if (body.error) throw new Error(body.error.message);
    return body.result;
  });
  await context.addInitScript((cfg) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- runs in the page (no DOM types here)
    const w = globalThis as any;
    const calls: string[] = [];
    const listeners: Record<string, (() => void)[]> = {};
    w.__walletCalls = calls;
    const provider: Record<string, unknown> = {
      async request({ method, params }: { method: string; params?: unknown[] }) {
        calls.push(method);
        if (method === 'eth_requestAccounts' || method === 'eth_accounts') return [cfg.account];
        if (method === 'eth_chainId') return '0x7a69';
        if (method === 'eth_sendTransaction') {
          w.removeEventListener('eip6963:requestProvider', announce); // the announcement is withdrawn
          if (cfg.vanish === 'disabled') throw new Error('Extension context invalidated.');
          if (cfg.vanish === 'withdrawn') throw Object.assign(new Error('Internal JSON-RPC error.'), { code: -32603 });
          for (const l of listeners.disconnect ?? []) l();
          return new Promise(() => {}); // never answers
        }
        return w.__kassaRpc(method, params ?? []);
      },
      on(event: string, fn: () => void) { (listeners[event] ??= []).push(fn); },
      removeListener() {},
    };
    const detail = Object.freeze({ info: { uuid: '6f1b7c1e-0000-4000-8000-000000000002', name: 'Test Wallet', icon: 'data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22/%3E', rdns: 'test.kassa.wallet' }, provider });
    function announce() { w.dispatchEvent(new w.CustomEvent('eip6963:announceProvider', { detail })); }
    w.addEventListener('eip6963:requestProvider', announce);
    announce();
    w.__removeWallet = () => {
      w.removeEventListener('eip6963:requestProvider', announce);
      delete provider.request;
    };
  }, { vanish, account: f.node.accounts[0]!.address });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`${server.url}${path}`);
  return { page, context, errors };
}

const GONE_EN = 'Test Wallet is no longer available: it was closed, disabled or removed. If you already confirmed the payment there, this page shows it once the network sees it. Otherwise pay by copying the amount and address, or with the QR code.';
const GONE_ZH = 'Test Wallet 已不可用：它已被关闭、停用或移除。如果您已在其中确认付款，网络收到后本页面会显示。否则请复制金额和地址付款，或扫描二维码付款。';

describe('checkout: the browser wallet disappears mid-payment', () => {
  for (const vanish of ['disabled', 'withdrawn', 'hangs', 'removed'] as const) {
    it(`${vanish}: a clear message, the wallet's button goes, focus stays on the page, the QR and address remain, nothing is sent`, async () => {
      const inv = await invoice();
      const eth = inv.payment_methods.find((m) => m.method === 'ETH-ethereum')!;
      const { page, context, errors } = await openPage(`/pay/${inv.id}?method=ETH-ethereum`, vanish);
      const button = page.getByRole('button', { name: 'Pay with Test Wallet' });
      await button.waitFor();
      if (vanish === 'removed') await page.evaluate('window.__removeWallet()');
      await button.focus();
      await page.keyboard.press('Enter');
      await expect.poll(() => page.locator('#wallet-status').innerText(), { timeout: 10_000 }).toBe(GONE_EN);
      expect(await page.locator('#wallet-status').getAttribute('class')).toContain('error');
      expect(await page.getByRole('button', { name: /Pay with/ }).count()).toBe(0);
      expect(await page.locator('#browser-wallets').isHidden()).toBe(true);
      expect(await page.evaluate('document.activeElement && document.activeElement.id')).toBe('amount');
      expect(await page.locator('#qr').isVisible()).toBe(true);
      expect(await page.locator('#address').innerText()).toBe(eth.address);
      const calls = (await page.evaluate('window.__walletCalls')) as string[];
      if (vanish === 'removed') expect(calls).toEqual([]); // gone before the first call
      else expect(calls.at(-1)).toBe('eth_sendTransaction'); // it vanished when asked to send
      expect(await f.publicClient.getBalance({ address: eth.address as Address })).toBe(0n);
      expect(errors).toEqual([]);
      await context.close();
    });
  }

  it('says it in Simplified Chinese too', async () => {
    const inv = await invoice();
    const { page, context, errors } = await openPage(`/pay/${inv.id}?method=USDC-ethereum&lang=zh-CN`, 'disabled', 'zh-CN');
    await page.getByRole('button', { name: '使用 Test Wallet 支付' }).click();
    await expect.poll(() => page.locator('#wallet-status').innerText(), { timeout: 10_000 }).toBe(GONE_ZH);
    expect(await page.getByRole('button', { name: /Test Wallet/ }).count()).toBe(0);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('axe-core: 0 violations once the wallet is gone, in en and zh-CN', async () => {
    const inv = await invoice();
    const found: string[] = [];
    for (const [lang, locale, said] of [['en', 'en-US', GONE_EN], ['zh-CN', 'zh-CN', GONE_ZH]] as const) {
      const { page, context } = await openPage(`/pay/${inv.id}?method=ETH-ethereum&lang=${lang}`, 'hangs', locale, true);
      await page.locator('.wallet-button').click();
      await expect.poll(() => page.locator('#wallet-status').innerText(), { timeout: 10_000 }).toBe(said);
      for (const v of await axeViolations(page)) found.push(`${lang}: ${v}`);
      await context.close();
    }
    expect(found).toEqual([]);
  });

  it('a wallet that is still there keeps its button after a failure it reports itself', async () => {
    // The same generic error as `withdrawn`, but the wallet still answers a new request for providers.
    const inv = await invoice();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript((account) => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- runs in the page
      const w = globalThis as any;
      const provider = {
        async request({ method }: { method: string }) {
          if (method === 'eth_requestAccounts') return [account];
          if (method === 'eth_chainId') return '0x7a69';
          if (method === 'eth_getBalance') return '0xffffffffffffffffffff';
          throw Object.assign(new Error('Internal JSON-RPC error.'), { code: -32603 });
        },
        on() {},
        removeListener() {},
      };
      const detail = Object.freeze({ info: { uuid: '6f1b7c1e-0000-4000-8000-000000000003', name: 'Test Wallet', icon: 'data:,', rdns: 'test.kassa.wallet' }, provider });
      const announce = () => w.dispatchEvent(new w.CustomEvent('eip6963:announceProvider', { detail }));
      w.addEventListener('eip6963:requestProvider', announce);
      announce();
    }, f.node.accounts[0]!.address);
    const page = await context.newPage();
    await page.goto(`${server.url}/pay/${inv.id}?method=ETH-ethereum`);
    await page.getByRole('button', { name: 'Pay with Test Wallet' }).click();
    await expect.poll(() => page.locator('#wallet-status').innerText(), { timeout: 10_000 }).toBe('The wallet could not send the payment: Internal JSON-RPC error.');
    expect(await page.getByRole('button', { name: 'Pay with Test Wallet' }).isEnabled()).toBe(true);
    await context.close();
  });
});
