/**
 * Refunds in the dashboard, the whole EVM path in real headless Chromium against a real server,
 * Postgres, Redis and a hardhat node with the Kassa contracts and TestUSDC (docs/refunds.md, "In
 * the dashboard"): an invoice overpaid in USDC (recorded by the real EVM watcher); finance creates
 * the refund of the overpaid part; the customer claims it on the claim page; the owner approves it
 * (after re-authenticating: a money action), then presses "Send with Test Wallet" — the injected
 * EIP-6963 wallet of test/support/wallet-checkout.ts, on the treasury account (hardhat account 1)
 * — which sends the ERC-20 transfer on the node; the page reports the hash, Kassa checks it on chain
 * (broadcast) and the refund tracker completes it. Also: roles (hidden buttons and refused forged
 * requests), the four-eyes rule and its setting, the CSP, and the reconciliation page and CSV.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import type { Address } from 'viem';
import type { EvmChainConfig } from '../../src/config.ts';
import { createEvmClient } from '../../src/chains/evm/client.ts';
import { testUSDCAbi } from '../../src/sandbox/contract-artifacts.ts';
import { refundServiceFor } from '../../src/refunds/service.ts';
import { createDashboardAuth, type DashboardAuth } from '../../src/dashboard/auth.ts';
import { DASHBOARD_CSP, DASHBOARD_WALLET_CSP } from '../../src/dashboard/routes.tsx';
import { randomAddress, wallet, mined } from '../contracts/fixture.ts';
import { createEvmWatcher, type EvmWatcher } from '../support/watchers.ts';
import { req } from '../support/db.ts';
import { TEST_TREASURY } from '../support/merchant.ts';
import { injectTestWallet, startWalletCheckout, type WalletCheckout } from '../support/wallet-checkout.ts';

const PASSWORD = 'correct horse battery staple';
const EXPLORER = 'https://explorer.example/tx/{txid}';

let w: WalletCheckout;
let auth: DashboardAuth;
let watcher: EvmWatcher;
const users: Record<string, string> = {};

const customerWallet = () => wallet(w.f, 0); // holds the test tokens and pays the invoices
const usdcBalance = (a: Address) => w.f.publicClient.readContract({ address: w.f.contracts.testUsdc, abi: testUSDCAbi, functionName: 'balanceOf', args: [a] }) as Promise<bigint>;

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`${w.server.url}${path}`, req(w.shop.secret, method, body));
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function sync(): Promise<void> {
  for (let i = 0; i < 50; i++) if (!(await watcher.runOnce()).more) return;
  throw new Error('watcher did not reach the tip');
}

/** A $10.00 invoice in USDC (1 confirmation) that the customer overpays with 15 USDC. */
async function overpaidInvoice(): Promise<string> {
  const inv = await api('POST', '/v1/invoices', { amount: '10.00', currency: 'USD', payment_methods: ['USDC-ethereum'], speed_policy: 'medium' });
  expect(inv.status, JSON.stringify(inv.body)).toBe(201);
  const address = inv.body.payment_methods[0].address as Address;
  await mined(w.f, customerWallet().writeContract({ address: w.f.contracts.testUsdc, abi: testUSDCAbi, functionName: 'transfer', args: [address, 15_000_000n] }));
  await sync();
  expect((await api('GET', `/v1/invoices/${inv.body.id}`)).body).toMatchObject({ status: 'settled', exception: 'paid_over', amount_paid: '15.00' });
  return inv.body.id as string;
}

async function user(email: string, role: string): Promise<void> {
  const r = await auth.createUser(w.shop.merchant.id, { email, role, createdBy: 'test' });
  await auth.completeSetup(r.setupUrl.split('/').pop()!, PASSWORD, '127.0.0.1');
  users[email] = r.user.id;
}

/** Signs in as `email` in a new browser context (with the test wallet on `walletAccount` when given). */
async function login(email: string, walletAccount?: string): Promise<{ page: Page; context: BrowserContext; errors: string[] }> {
  const context = await w.browser.newContext({ viewport: { width: 1280, height: 900 } });
  if (walletAccount) await injectTestWallet(context, w.f.node.url, { account: walletAccount });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    // Pages answered with a 4xx on purpose (refused actions) log a failed resource; anything else is an error.
    if (m.type() === 'error' && !/status of 4(0[0134]|22)/.test(m.text())) errors.push(m.text());
  });
  page.on('request', (r) => {
    if (!r.url().startsWith(w.server.url) && !r.url().startsWith('data:')) errors.push(`third-party request: ${r.url()}`);
  });
  await page.goto(`${w.server.url}/dashboard/login`);
  await page.fill('#email', email);
  await page.fill('#password', PASSWORD);
  await page.click('#sign-in');
  await page.waitForURL(/\/dashboard$/);
  return { page, context, errors };
}

const csrfOf = (page: Page) => page.locator('form[action="/dashboard/logout"] input[name="_csrf"]').inputValue();
const refundRow = async (id: string) => (await w.ctx.deps.sql<{ status: string; txid: string | null; destination: string | null }[]>`select status, txid, destination from refunds where id = ${id}`)[0]!;

/** The customer's side: the claim link from the dashboard, their address, confirmed. */
async function claim(claimUrl: string, destination: string): Promise<void> {
  const context = await w.browser.newContext();
  const page = await context.newPage();
  await page.goto(claimUrl.replace('http://kassa.test', w.server.url));
  await page.fill('#destination', destination);
  await page.check('input[name="confirm"]');
  await page.click('form.claim button[type="submit"]');
  await page.waitForLoadState();
  await context.close();
}

beforeAll(async () => {
  w = await startWalletCheckout({ explorer_tx_url: EXPLORER });
  auth = createDashboardAuth({ sql: w.ctx.deps.sql, config: w.ctx.config, logger: w.ctx.deps.logger });
  const cfg = w.ctx.config.chains.ethereum as EvmChainConfig;
  watcher = createEvmWatcher({
    chain: 'ethereum', config: cfg, client: createEvmClient(cfg, { retryCount: 0 }), sql: w.ctx.deps.sql, settlement: w.ctx.deps.settlement,
    redis: w.ctx.deps.redis, queuePrefix: w.ctx.config.queuePrefix, logger: w.ctx.deps.logger, startBlock: Number(await w.f.publicClient.getBlockNumber()) + 1,
  });
  // The treasury (hardhat account 1, the merchant's own wallet) holds USDC to refund with.
  await mined(w.f, customerWallet().writeContract({ address: w.f.contracts.testUsdc, abi: testUSDCAbi, functionName: 'transfer', args: [TEST_TREASURY as Address, 1_000_000_000n] }));
  await user('finance@cafe.test', 'finance');
  await user('owner@cafe.test', 'owner');
  await user('viewer@cafe.test', 'viewer');
}, 180_000);

afterAll(async () => {
  await w?.close();
});

describe('dashboard refunds (EVM, browser wallet)', () => {
  it('finance creates, the customer claims, the owner approves and sends it with the browser wallet; Kassa sees it broadcast, then completed', async () => {
    const invoiceId = await overpaidInvoice();
    const customer = randomAddress();
    const treasury = TEST_TREASURY as Address;
    expect(treasury.toLowerCase()).toBe(w.f.node.accounts[1]!.address.toLowerCase());

    // Finance: the refund form on the overpaid invoice; the overpaid part, with a reason that is escaped.
    const fin = await login('finance@cafe.test');
    await fin.page.goto(`${w.server.url}/dashboard/invoices/${invoiceId}`);
    expect(await fin.page.locator('#refunds-none').innerText()).toBe('No refunds.');
    await fin.page.check('#refund-overpaid');
    await fin.page.fill('#refund-reason', 'Overpaid <b>by</b> $5');
    await fin.page.click('#refund-create');
    await fin.page.waitForURL(/done=refund_created/);
    const [created] = await w.ctx.deps.sql<{ id: string }[]>`select id from refunds where invoice_id = ${invoiceId}`;
    const id = created!.id;
    expect(await fin.page.locator(`#refund-status-${id}`).innerText()).toBe('waiting for the customer to enter their address');
    expect(await fin.page.locator(`#refund-amount-${id}`).innerText()).toBe('5.00 USDC');
    expect(await fin.page.locator(`#refund-${id}`).innerText()).toContain('Overpaid <b>by</b> $5');
    expect(await fin.page.locator(`#refund-${id} b`).count()).toBe(0);
    const claimUrl = await fin.page.locator(`#claim-url-${id}`).inputValue();
    expect(claimUrl).toBe((await api('GET', `/v1/refunds/${id}`)).body.claim_url);
    const [createdBy] = await w.ctx.deps.sql`select user_id from refund_dashboard_actions where refund_id = ${id} and action = 'created'`;
    expect(createdBy!.user_id).toBe(users['finance@cafe.test']);

    // The customer claims it with their own address.
    await claim(claimUrl, customer);
    expect(await refundRow(id)).toMatchObject({ status: 'awaiting_approval', destination: customer });

    // Finance cannot approve: no button, and a forged request is refused.
    await fin.page.reload();
    expect(await fin.page.locator(`#approve-${id}`).count()).toBe(0);
    const forged = await fin.context.request.post(`${w.server.url}/dashboard/invoices/${invoiceId}/refunds/${id}/approve`, { form: { _csrf: await csrfOf(fin.page) } });
    expect(forged.status()).toBe(403);
    expect((await refundRow(id)).status).toBe('awaiting_approval');
    // Without the CSRF token nothing happens either.
    const noCsrf = await fin.context.request.post(`${w.server.url}/dashboard/invoices/${invoiceId}/refunds/${id}/cancel`, { form: {} });
    expect(noCsrf.status()).toBe(403);
    expect((await refundRow(id)).status).toBe('awaiting_approval');

    // The owner, whose browser has the test wallet on the treasury account, signed in long enough
    // ago that approving asks for the password again.
    const own = await login('owner@cafe.test', treasury);
    await w.ctx.deps.sql`update dashboard_sessions set reauth_at = now() - interval '1 hour' where user_id = ${users['owner@cafe.test']!}`;
    await own.page.goto(`${w.server.url}/dashboard/invoices/${invoiceId}`);
    expect(await own.page.locator(`#refund-${id}`).innerText()).toContain('by finance@cafe.test');
    await own.page.click(`#approve-${id}`);
    expect(await own.page.locator('#reauth-why').isVisible()).toBe(true);
    expect((await refundRow(id)).status).toBe('awaiting_approval');
    await own.page.fill('#reauth-password', PASSWORD);
    await own.page.click('#reauth-confirm');
    await own.page.waitForURL(new RegExp(`/dashboard/invoices/${invoiceId}\\?done=reauthenticated$`));
    const approvedPage = own.page.waitForResponse((r) => r.url().includes('done=refund_approved'));
    await own.page.click(`#approve-${id}`);
    const approvedResponse = await approvedPage;
    expect((await refundRow(id)).status).toBe('awaiting_signature');
    // Only this page (with the wallet button) may load a script, and only from the dashboard itself.
    expect(approvedResponse.headers()['content-security-policy']).toBe(DASHBOARD_WALLET_CSP);
    expect(DASHBOARD_WALLET_CSP).toContain("script-src 'self'");
    expect(DASHBOARD_WALLET_CSP).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect((await fin.context.request.get(`${w.server.url}/dashboard`)).headers()['content-security-policy']).toBe(DASHBOARD_CSP);
    const refund = (await api('GET', `/v1/refunds/${id}`)).body;
    expect(await own.page.locator(`#eip681-${id}`).innerText()).toBe(refund.evm.link);
    expect(refund.evm.transaction.from).toBe(TEST_TREASURY);

    // "Send with Test Wallet": the ERC-20 transfer from the treasury, then the hash goes to Kassa.
    const button = own.page.locator(`#wallet-send-${id}`);
    await expect.poll(() => button.isVisible()).toBe(true);
    expect(await button.innerText()).toBe('Send with Test Wallet');
    const before = await usdcBalance(customer);
    await button.click();
    await own.page.waitForURL(/done=refund_sent/, { timeout: 30_000 });
    const sent = await refundRow(id);
    expect(sent.status).toBe('broadcast');
    expect(await usdcBalance(customer) - before).toBe(5_000_000n);
    // What the wallet sent (the page has moved on, so read it from the node): the prepared call, from the treasury.
    const onChain = await w.f.publicClient.getTransaction({ hash: sent.txid as `0x${string}` });
    expect({ from: onChain.from.toLowerCase(), to: onChain.to?.toLowerCase(), value: onChain.value, input: onChain.input })
      .toEqual({ from: treasury.toLowerCase(), to: w.f.contracts.testUsdc.toLowerCase(), value: 0n, input: refund.evm.transaction.data });
    expect(await own.page.locator(`#refund-txid-${id} a`).getAttribute('href')).toBe(EXPLORER.replace('{txid}', sent.txid!));
    expect(await own.page.locator(`#wallet-send-${id}`).count()).toBe(0);

    // The maintenance job's pass: the transaction has the invoice's one confirmation.
    expect(await refundServiceFor(w.ctx.deps).track('ethereum')).toMatchObject({ completed: 1, failed: 0 });
    await own.page.reload();
    expect(await own.page.locator(`#refund-status-${id}`).innerText()).toBe('completed');
    const audit = await w.ctx.deps.sql<{ action: string; actor: string }[]>`
      select action, actor from audit_log where target = ${`refund:${id}`} order by id`;
    expect(audit).toEqual([
      { action: 'refund.created', actor: `user:${users['finance@cafe.test']}` },
      { action: 'refund.approved', actor: `user:${users['owner@cafe.test']}` },
      { action: 'refund.transaction_reported', actor: `user:${users['owner@cafe.test']}` },
    ]);

    // The reconciliation page shows the refund, and its CSV is the API's, byte for byte.
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    await fin.page.goto(`${w.server.url}/dashboard/reconciliation?from=${today}&to=${tomorrow}`);
    const report = (await api('GET', `/v1/reports/reconciliation?from=${today}&to=${tomorrow}`)).body;
    const usd = report.totals.per_currency.find((c: { currency: string }) => c.currency === 'USD');
    expect(usd.refunded).toBe('5.00');
    const perCurrency = await fin.page.locator('#per-currency tbody tr', { hasText: 'USD' }).innerText();
    expect(perCurrency.split('\t').slice(-2)).toEqual([usd.refunded, usd.net_received]);
    const row = await fin.page.locator('#rec-invoices tbody tr', { hasText: invoiceId }).innerText();
    const inv = report.invoices.find((i: { invoice_id: string }) => i.invoice_id === invoiceId);
    expect(inv).toMatchObject({ refunded: '5.00', net_received: '10.00' });
    expect(row.split('\t').slice(-4)).toEqual(['5.00', '10.00', '1', '1']);
    const asset = report.totals.per_asset.find((a: { method: string }) => a.method === 'USDC-ethereum');
    expect((await fin.page.locator('#per-asset tbody tr', { hasText: 'USDC-ethereum' }).innerText()).split('\t').slice(-3)).toEqual([String(asset.refunds), asset.refunded, `${asset.net_received} USDC`]);
    const [download] = await Promise.all([fin.page.waitForEvent('download'), fin.page.click('#csv')]);
    const csv = await new Response((await download.createReadStream()) as unknown as ReadableStream).text();
    const apiCsv = await (await fetch(`${w.server.url}/v1/reports/reconciliation?from=${today}&to=${tomorrow}&format=csv`, req(w.shop.secret, 'GET'))).text();
    expect(csv).toBe(apiCsv);
    expect(csv).toContain(`,refund,${id},completed,`);

    expect(fin.errors).toEqual([]);
    expect(own.errors).toEqual([]);
    await fin.context.close();
    await own.context.close();
  }, 120_000); // four browser sign-ins (a deliberate scrypt each), a re-authentication, the chain

  it('four eyes: the creator cannot approve their own refund until an owner allows one person to do both; viewers see no refund actions', async () => {
    const invoiceId = await overpaidInvoice();
    const own = await login('owner@cafe.test');
    await own.page.goto(`${w.server.url}/dashboard/invoices/${invoiceId}`);
    await own.page.check('#refund-decimal');
    await own.page.fill('#refund-amount', '1.50');
    await own.page.click('#refund-create');
    await own.page.waitForURL(/done=refund_created/);
    const [r] = await w.ctx.deps.sql<{ id: string; amount: bigint }[]>`select id, amount from refunds where invoice_id = ${invoiceId}`;
    expect(r!.amount).toBe(1_500_000n);
    // A viewer sees the refund but no form, no action and no claim link.
    const viewer = await login('viewer@cafe.test');
    await viewer.page.goto(`${w.server.url}/dashboard/invoices/${invoiceId}`);
    expect(await viewer.page.locator(`#refund-${r!.id}`).count()).toBe(1);
    // Nor the claim link: whoever has it chooses where the money goes.
    expect(await viewer.page.locator(`#claim-url-${r!.id}`).count()).toBe(0);
    expect(await viewer.page.locator('#refund-form, #refunds form').count()).toBe(0);
    expect((await viewer.context.request.post(`${w.server.url}/dashboard/invoices/${invoiceId}/refunds`, { form: { _csrf: await csrfOf(viewer.page), amount_kind: 'full' } })).status()).toBe(403);
    await viewer.context.close();
    await claim(await own.page.locator(`#claim-url-${r!.id}`).inputValue(), randomAddress());
    await own.page.reload();
    expect(await own.page.locator(`#approve-${r!.id}`).count()).toBe(0);
    expect(await own.page.locator(`#approve-other-${r!.id}`).innerText()).toContain('another owner approves it');
    const forged = await own.context.request.post(`${w.server.url}/dashboard/invoices/${invoiceId}/refunds/${r!.id}/approve`, { form: { _csrf: await csrfOf(own.page) } });
    expect(forged.status()).toBe(403);
    expect((await refundRow(r!.id)).status).toBe('awaiting_approval');


    // The owner allows one person to do both (a sensitive setting: signed in just now), then approves, then cancels.
    await own.page.goto(`${w.server.url}/dashboard/settings`);
    expect(await own.page.locator('#refund-single-person').innerText()).toBe('not allowed');
    await own.page.click('#refund-single-person-toggle');
    await own.page.waitForURL(/done=refund_setting/);
    expect(await own.page.locator('#refund-single-person').innerText()).toBe('allowed');
    await own.page.goto(`${w.server.url}/dashboard/invoices/${invoiceId}`);
    await own.page.click(`#approve-${r!.id}`);
    await own.page.waitForURL(/done=refund_approved/);
    expect((await refundRow(r!.id)).status).toBe('awaiting_signature');
    // Without a wallet in this browser the button stays hidden and the page says so.
    expect(await own.page.locator(`#wallet-send-${r!.id}`).isVisible()).toBe(false);
    expect(await own.page.locator(`#wallet-none-${r!.id}`).isVisible()).toBe(true);
    // A hash that does not pay this refund is refused, named, and changes nothing.
    await own.page.fill(`#txid-${r!.id}`, `0x${'12'.repeat(32)}`);
    await own.page.click(`#txid-report-${r!.id}`);
    expect(await own.page.locator('#error').innerText()).toContain('(field: txid)');
    expect((await refundRow(r!.id)).status).toBe('awaiting_signature');
    await own.page.click(`#cancel-${r!.id}`);
    await own.page.waitForURL(/done=refund_cancelled/);
    expect((await refundRow(r!.id)).status).toBe('cancelled');
    await w.ctx.deps.sql`update merchants set refund_single_person = false where id = ${w.shop.merchant.id}`;
    expect(own.errors).toEqual([]);
    await own.context.close();
  }, 120_000);
});
