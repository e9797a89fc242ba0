/**
 * The checkout with a browser wallet, for the Chromium wallet tests: a hardhat node with the Kassa
 * contracts and the test tokens, a chains file whose `ethereum` entry gets `ethereum` merged in, a
 * real server for an EVM-only merchant, and headless Chromium; and the injected EIP-6963 test
 * wallet (`injectTestWallet`) that pages of those tests talk to.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Browser, BrowserContext } from 'playwright-core';
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

export interface TestWalletOptions {
  /** The account the wallet offers (a hardhat dev account: the node signs for it). */
  account: string;
  /** The chain the wallet is on when the page connects (hex; default hardhat's 0x7a69). */
  startChain?: string;
  /** Chains wallet_switchEthereumChain knows (others answer 4902, "add it first"). */
  knows?: string[];
  /** The user rejects the transaction. */
  reject?: boolean;
}

export const HARDHAT_CHAIN_HEX = '0x7a69'; // 31337

/**
 * Every page of `context` sees an injected EIP-6963 provider ("Test Wallet") that answers accounts
 * and the chain itself and forwards every other call to the hardhat node at `nodeUrl` (unlocked dev
 * accounts), the way a wallet extension forwards to its node; the confirmation in the wallet is the
 * provider answering. The page's calls are recorded in `window.__walletCalls` ([method, params]).
 */
export async function injectTestWallet(context: BrowserContext, nodeUrl: string, wallet: TestWalletOptions): Promise<void> {
  await context.exposeFunction('__kassaRpc', async (method: string, params: unknown[]) => {
    const res = await fetch(nodeUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
    const body = (await res.json()) as { result?: unknown; error?: { message: string } };
    if (body.error) throw new Error(body.error.message);
    return body.result;
  });
  await context.addInitScript((cfg) => {
    let chain = cfg.startChain;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- runs in the page (no DOM types here)
    const w = globalThis as any;
    const calls: unknown[] = [];
    w.__walletCalls = calls;
    const provider = {
      async request({ method, params }: { method: string; params?: unknown[] }) {
        calls.push([method, params ?? []]);
        if (method === 'eth_requestAccounts' || method === 'eth_accounts') return [cfg.account];
        if (method === 'eth_chainId') return chain;
        if (method === 'wallet_switchEthereumChain') {
          const id = (params![0] as { chainId: string }).chainId;
          if (!cfg.knows.includes(id)) throw Object.assign(new Error('Unrecognized chain ID'), { code: 4902 });
          chain = id;
          return null;
        }
        if (method === 'wallet_addEthereumChain') {
          chain = (params![0] as { chainId: string }).chainId;
          return null;
        }
        if (method === 'eth_sendTransaction' && cfg.reject) throw Object.assign(new Error('User rejected the request.'), { code: 4001 });
        if (chain !== cfg.nodeChain) throw Object.assign(new Error('The wallet is on another chain'), { code: 4901 });
        return w.__kassaRpc(method, params ?? []);
      },
      on() {},
      removeListener() {},
    };
    const detail = Object.freeze({ info: { uuid: '6f1b7c1e-0000-4000-8000-000000000001', name: 'Test Wallet', icon: 'data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22/%3E', rdns: 'test.kassa.wallet' }, provider });
    const announce = () => w.dispatchEvent(new w.CustomEvent('eip6963:announceProvider', { detail }));
    w.addEventListener('eip6963:requestProvider', announce);
    announce();
  }, { startChain: wallet.startChain ?? HARDHAT_CHAIN_HEX, knows: wallet.knows ?? [HARDHAT_CHAIN_HEX], reject: wallet.reject ?? false, nodeChain: HARDHAT_CHAIN_HEX, account: wallet.account });
}
