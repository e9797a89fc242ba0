/**
 * Paying from a browser wallet on the checkout, in real headless Chromium against a real server,
 * Postgres, Redis and a hardhat node with the Kassa contracts and TestUSDC. The page sees an
 * injected EIP-6963 provider ("Test Wallet") that answers accounts and chain itself and forwards
 * every other call to hardhat (unlocked dev account 0), the way a wallet extension forwards to
 * its node. The page's one click is "Pay with Test Wallet"; the second click, the confirmation in
 * the wallet, is the provider answering. No request leaves the page except to our server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Address, Hex } from 'viem';
import { testUSDCAbi } from '../../src/sandbox/contract-artifacts.ts';
import type { PublicInvoice } from '../../src/checkout/public-invoice.ts';
import type { TestContext } from '../support/db.ts';
import type { createPayableMerchant } from '../support/merchant.ts';
import type { TestServer } from '../support/browser.ts';
import { HARDHAT_CHAIN_HEX, injectTestWallet, startWalletCheckout, type TestWalletOptions, type WalletCheckout } from '../support/wallet-checkout.ts';
import { axeViolations } from '../support/axe.ts';
import type { ContractsFixture } from '../contracts/fixture.ts';

const EXPLORER = 'https://explorer.example/tx/{txid}';
const PUBLIC_RPC = 'https://rpc.example/';
const HARDHAT = HARDHAT_CHAIN_HEX;

let f: ContractsFixture;
let ctx: TestContext;
let server: TestServer;
let browser: Browser;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;

let w: WalletCheckout;

beforeAll(async () => {
  w = await startWalletCheckout({ explorer_tx_url: EXPLORER, public_rpc_url: PUBLIC_RPC });
  ({ f, ctx, server, browser, shop } = w);
}, 120_000);

afterAll(async () => {
  await w?.close();
});

const invoice = () => w.invoice();

type WalletOptions = Omit<TestWalletOptions, 'account'> & {
  /** Dev account index the wallet uses (default 0, which holds the TestUSDC). */
  account?: number;
};

/** A page with (or, `wallet: null`, without) the injected EIP-6963 test wallet. */
async function openPage(path: string, wallet: WalletOptions | null, opts: { locale?: string; bypassCSP?: boolean } = {}) {
  const context: BrowserContext = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: opts.locale ?? 'en-US', bypassCSP: opts.bypassCSP ?? false });
  const errors: string[] = [];
  if (wallet) {
    await injectTestWallet(context, f.node.url, { ...wallet, account: f.node.accounts[wallet.account ?? 0]!.address });
  }
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('request', (r) => {
    if (!r.url().startsWith(server.url) && !r.url().startsWith('data:')) errors.push(`third-party request: ${r.url()}`);
  });
  await page.goto(`${server.url}${path}`);
  return { page, context, errors };
}

const walletCalls = async (page: Page) => ((await page.evaluate('window.__walletCalls')) as [string, unknown[]][]).map((c) => c[0]);
const dueUnits = (m: PublicInvoice['payment_methods'][number]) => BigInt(/(?:value|uint256)=(\d+)/.exec(m.payment_uri)![1]!);
const usdcBalance = (a: Address) => f.publicClient.readContract({ address: f.contracts.testUsdc, abi: testUSDCAbi, functionName: 'balanceOf', args: [a] }) as Promise<bigint>;

async function sentHash(page: Page): Promise<Hex> {
  await expect.poll(() => page.locator('#wallet-status').innerText(), { timeout: 20_000 }).toMatch(/^Sent from your wallet/);
  return (await page.locator('#wallet-status code').innerText()) as Hex;
}

describe('checkout: pay with a browser wallet (EIP-6963)', () => {
  it('pays the exact ETH amount due in one click on the page, and shows the hash with an explorer link', async () => {
    const inv = await invoice();
    const eth = inv.payment_methods.find((m) => m.method === 'ETH-ethereum')!;
    const { page, context, errors } = await openPage(`/pay/${inv.id}?method=ETH-ethereum`, {});
    const button = page.getByRole('button', { name: 'Pay with Test Wallet' });
    await button.focus();
    await page.keyboard.press('Enter');
    const hash = await sentHash(page);
    expect(await page.locator('#wallet-status a').getAttribute('href')).toBe(EXPLORER.replace('{txid}', hash));
    const tx = await f.publicClient.getTransaction({ hash });
    expect(tx.to!.toLowerCase()).toBe(eth.address.toLowerCase());
    expect(tx.value).toBe(dueUnits(eth));
    expect(await f.publicClient.getBalance({ address: eth.address as Address })).toBe(dueUnits(eth));
    expect(await walletCalls(page)).toEqual(['eth_requestAccounts', 'eth_chainId', 'eth_getBalance', 'eth_sendTransaction']);
    // Sent: the button is not offered again for the same amount (a second click would pay twice).
    await expect.poll(() => page.getByRole('button', { name: 'Pay with Test Wallet' }).count()).toBe(0);
    expect(await page.locator('#wallet-status').isVisible()).toBe(true);
    expect(await page.evaluate('document.activeElement && document.activeElement.id')).toBe('wallet-status'); // not <body>
    expect(errors).toEqual([]);
    await context.close();
  });

  it('pays USDC with an ERC-20 transfer of the exact amount to the deposit address', async () => {
    const inv = await invoice();
    const usdc = inv.payment_methods.find((m) => m.method === 'USDC-ethereum')!;
    const { page, context, errors } = await openPage(`/pay/${inv.id}?method=USDC-ethereum`, {});
    await page.getByRole('button', { name: 'Pay with Test Wallet' }).click();
    const hash = await sentHash(page);
    const tx = await f.publicClient.getTransaction({ hash });
    expect(tx.to!.toLowerCase()).toBe(f.contracts.testUsdc.toLowerCase());
    expect(tx.value).toBe(0n);
    expect(dueUnits(usdc)).toBe(25_000_000n);
    expect(await usdcBalance(usdc.address as Address)).toBe(25_000_000n);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('a wallet on another chain is switched to the invoice chain first', async () => {
    const inv = await invoice();
    const eth = inv.payment_methods.find((m) => m.method === 'ETH-ethereum')!;
    const { page, context, errors } = await openPage(`/pay/${inv.id}?method=ETH-ethereum`, { startChain: '0x1', knows: ['0x1', HARDHAT] });
    await page.getByRole('button', { name: 'Pay with Test Wallet' }).click();
    await sentHash(page);
    expect(await walletCalls(page)).toContain('wallet_switchEthereumChain');
    expect(await f.publicClient.getBalance({ address: eth.address as Address })).toBe(dueUnits(eth));
    expect(errors).toEqual([]);
    await context.close();
  });

  it('a wallet that does not know the chain is asked to add it with the public RPC URL, never the private one', async () => {
    const inv = await invoice();
    const { page, context } = await openPage(`/pay/${inv.id}?method=ETH-ethereum`, { startChain: '0x1', knows: ['0x1'] });
    await page.getByRole('button', { name: 'Pay with Test Wallet' }).click();
    await sentHash(page);
    const calls = (await page.evaluate('window.__walletCalls')) as [string, unknown[]][];
    const add = calls.find((c) => c[0] === 'wallet_addEthereumChain')![1][0] as Record<string, unknown>;
    expect(add).toEqual({
      chainId: HARDHAT, chainName: 'Ethereum (chain 31337)', rpcUrls: [PUBLIC_RPC], blockExplorerUrls: ['https://explorer.example'],
      nativeCurrency: { name: 'ETH', symbol: 'ETH', decimals: 18 },
    });
    expect(JSON.stringify(calls)).not.toContain(f.node.url.replace('http://', ''));
    await context.close();
  });

  it('the user rejecting in the wallet gets a clear message and nothing is sent (en, zh-CN)', async () => {
    const inv = await invoice();
    const eth = inv.payment_methods.find((m) => m.method === 'ETH-ethereum')!;
    for (const [lang, name, said] of [['en', 'Pay with Test Wallet', 'You cancelled in your wallet. Nothing was sent.'], ['zh-CN', '使用 Test Wallet 支付', '您在钱包中取消了操作，没有发送任何资金。']] as const) {
      const { page, context, errors } = await openPage(`/pay/${inv.id}?method=ETH-ethereum&lang=${lang}`, { reject: true });
      await page.getByRole('button', { name }).focus();
      await page.keyboard.press('Enter');
      await expect.poll(() => page.locator('#wallet-status').innerText()).toBe(said);
      expect(await page.getByRole('button', { name }).isEnabled()).toBe(true);
      expect(await page.getByRole('button', { name }).getAttribute('aria-disabled')).toBe('false');
      // A keyboard user is still on the button to try again (it was never disabled, so focus stayed).
      expect(await page.evaluate('document.activeElement && document.activeElement.className')).toBe('button wallet-button');
      expect(errors).toEqual([]);
      await context.close();
    }
    expect(await f.publicClient.getBalance({ address: eth.address as Address })).toBe(0n);
  });

  it('an account without enough USDC is told so before anything is sent', async () => {
    const inv = await invoice();
    const usdc = inv.payment_methods.find((m) => m.method === 'USDC-ethereum')!;
    const { page, context, errors } = await openPage(`/pay/${inv.id}?method=USDC-ethereum`, { account: 5 });
    await page.getByRole('button', { name: 'Pay with Test Wallet' }).click();
    await expect.poll(() => page.locator('#wallet-status').innerText())
      .toBe('This wallet account does not have enough to pay 25.00 USDC plus the network fee on Ethereum (chain 31337).');
    expect(await walletCalls(page)).not.toContain('eth_sendTransaction');
    expect(await usdcBalance(usdc.address as Address)).toBe(0n);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('without a wallet the page offers the QR code and the address only', async () => {
    const inv = await invoice();
    const { page, context, errors } = await openPage(`/pay/${inv.id}?method=USDC-ethereum`, null);
    await page.waitForTimeout(600); // past the legacy window.ethereum check
    expect(await page.locator('#browser-wallets').isHidden()).toBe(true);
    expect(await page.locator('#wallet-status').isHidden()).toBe(true);
    expect(await page.getByRole('button', { name: /Pay with/ }).count()).toBe(0);
    expect(await page.locator('#qr').isVisible()).toBe(true);
    expect(await page.locator('#address').isVisible()).toBe(true);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('axe-core: 0 violations with the wallet button and after a wallet message, in en and zh-CN', async () => {
    const inv = await invoice();
    const found: string[] = [];
    for (const lang of ['en', 'zh-CN']) {
      const { page, context } = await openPage(`/pay/${inv.id}?method=USDC-ethereum&lang=${lang}`, { reject: true }, { bypassCSP: true });
      await page.locator('.wallet-button').waitFor();
      for (const v of await axeViolations(page)) found.push(`${lang} button: ${v}`);
      await page.locator('.wallet-button').click();
      await expect.poll(() => page.locator('#wallet-status').isVisible()).toBe(true);
      for (const v of await axeViolations(page)) found.push(`${lang} message: ${v}`);
      await context.close();
    }
    expect(found).toEqual([]);
  }, 90_000);
});
