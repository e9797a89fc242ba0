/**
 * The refund claim page, `/refund/<token>` (docs/refunds.md, rules 9 and 10): the customer sees the
 * amount and the network, enters their own address and confirms. Same look as the checkout (its
 * stylesheet), same languages (en, zh-CN: ?lang=, the invoice's locale, Accept-Language), the
 * checkout's security headers with one change (the form posts to this page: `form-action 'self'`),
 * and the same per-client-IP rate limit. Works without any script: a plain HTML form.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import type { FC } from 'hono/jsx';
import type { Deps } from '../deps.ts';
import type { AppEnv } from '../api/env.ts';
import { isKassaError } from '../errors.ts';
import { CHECKOUT_CSP, securityHeaders } from '../checkout/security.ts';
import { Shell } from '../checkout/page.tsx';
import { fmt, LOCALE_NAMES, LOCALES, MESSAGES, pickLocale, type Locale } from '../checkout/i18n.ts';
import { networkLabel as checkoutNetworkLabel } from '../checkout/view.ts';
import { chainFamily, networkName } from '../chains/families.ts';
import type { ChainConfig } from '../config.ts';
import { readableAmount } from '../money/amount.ts';
import type { RefundService } from './service.ts';

const en = {
  title: 'Your refund from {merchant}',
  amount: 'Amount',
  network: 'Network',
  intro: '{merchant} is refunding {amount} {asset} to you. Enter the address of your own wallet on {network_label} where you want to receive it.',
  warning: 'Use an address of a wallet you control. Do not use an exchange deposit address unless the exchange accepts {asset} on this network.',
  address_label: 'Your {asset} address',
  confirm_label: 'I checked: this is my {asset} address on {network_label}.',
  submit: 'Send the refund to this address',
  must_confirm: 'Tick the box to confirm the address.',
  claimed_title: 'Thank you: your address is recorded',
  claimed_detail: '{merchant} will send {amount} {asset} to {address}. You do not need to do anything else; keep this link to check the status.',
  status_sent: 'The refund was sent',
  status_sent_detail: '{amount} {asset} was sent to {address}. Transaction: {txid}.',
  status_closed: 'This refund link is closed',
  status_closed_detail: 'The refund was cancelled or could not be completed. Contact {merchant}.',
  not_found_title: 'Refund link not found',
  not_found_detail: 'This link is wrong or no longer exists. Check the link {merchant_generic} sent you.',
  merchant_generic: 'the shop',
  rate_limited_title: 'Too many requests',
  rate_limited_detail: 'Please wait a minute, then reload this page.',
  language: 'Language',
  error_title: 'Please check the address',
  destination_missing: 'Enter the address the refund should be sent to.',
  destination_invalid: 'This is not a valid address for {network_label}: check for a typing mistake, and that it is an address of this network.',
  destination_checksum_invalid: 'The capital letters of this address do not match its checksum: it was probably mistyped. Copy it again from your wallet.',
  destination_is_deposit_address: 'This is a payment address of the shop, not your own: enter an address of your wallet.',
};
type RefundMessages = Record<keyof typeof en, string>;

const zhCN: RefundMessages = {
  title: '{merchant} 给您的退款',
  amount: '金额',
  network: '网络',
  intro: '{merchant} 将向您退款 {amount} {asset}。请输入您自己在 {network_label} 上的钱包地址，用于接收退款。',
  warning: '请使用您自己控制的钱包地址。除非交易所支持该网络上的 {asset}，否则请勿使用交易所充值地址。',
  address_label: '您的 {asset} 地址',
  confirm_label: '我已核对：这是我在 {network_label} 上的 {asset} 地址。',
  submit: '将退款发送到此地址',
  must_confirm: '请勾选确认框以确认地址。',
  claimed_title: '谢谢：您的地址已记录',
  claimed_detail: '{merchant} 将向 {address} 发送 {amount} {asset}。您无需再做任何操作；请保留此链接以查看状态。',
  status_sent: '退款已发出',
  status_sent_detail: '{amount} {asset} 已发送到 {address}。交易：{txid}。',
  status_closed: '此退款链接已关闭',
  status_closed_detail: '退款已取消或无法完成。请联系 {merchant}。',
  not_found_title: '未找到退款链接',
  not_found_detail: '此链接有误或已不存在。请核对{merchant_generic}发给您的链接。',
  merchant_generic: '商家',
  rate_limited_title: '请求过多',
  rate_limited_detail: '请稍等一分钟，然后重新加载此页面。',
  language: '语言',
  error_title: '请检查地址',
  destination_missing: '请输入接收退款的地址。',
  destination_invalid: '这不是 {network_label} 的有效地址：请检查是否输错，以及地址是否属于该网络。',
  destination_checksum_invalid: '此地址的大小写与其校验和不符，可能输错了。请从您的钱包重新复制。',
  destination_is_deposit_address: '这是商家的收款地址，不是您自己的地址：请输入您钱包的地址。',
};

export const REFUND_MESSAGES: Record<Locale, RefundMessages> = { en, 'zh-CN': zhCN };

/** The checkout's policy, except that this page's form may post to itself. */
export const CLAIM_CSP = CHECKOUT_CSP.replace("form-action 'none'", "form-action 'self'");

type View = NonNullable<Awaited<ReturnType<RefundService['byToken']>>>;

const LangSwitcher: FC<{ locale: Locale; t: RefundMessages }> = ({ locale, t }) => (
  <nav class="lang" aria-label={t.language}>
    {LOCALES.map((l) => (
      <a href={`?lang=${encodeURIComponent(l)}`} lang={l} aria-current={l === locale ? 'true' : undefined} hreflang={l === locale ? undefined : l}>{LOCALE_NAMES[l]}</a>
    ))}
  </nav>
);

/**
 * The refund's network as the checkout names it in the page's language ("Bitcoin · regtest",
 * "Base", "Ethereum (chain 31337)"): the chain family's name and API fields through the checkout's rule.
 */
function networkLabel(v: View, locale: Locale, chains: Record<string, ChainConfig>): string {
  const cfg = chains[v.chain];
  return checkoutNetworkLabel({ network: v.network, network_name: networkName(v.chain, cfg), ...(cfg ? chainFamily(cfg).apiFields() : {}) }, MESSAGES[locale]);
}

const ClaimPage: FC<{ v: View; chains: Record<string, ChainConfig>; locale: Locale; t: RefundMessages; error?: string | undefined; typed?: string | undefined; txid?: string | null }> = ({ v, chains, locale, t, error, typed, txid }) => {
  const vars = { merchant: v.merchant_name, amount: readableAmount(v.amount), asset: v.asset, network_label: networkLabel(v, locale, chains), address: v.destination ?? '', txid: txid ?? '' };
  const title = fmt(t.title, vars);
  return (
    <Shell locale={locale} title={title}>
      <main class="card">
        <header class="head">
          <LangSwitcher locale={locale} t={t} />
          <p class="merchant">{v.merchant_name}</p>
          <p class="price"><span class="label">{t.amount}</span> {readableAmount(v.amount)} {v.asset}</p>
          <p class="desc">{t.network}: {vars.network_label}</p>
        </header>
        {v.status === 'awaiting_destination' ? (
          <section>
            <h1>{title}</h1>
            <p>{fmt(t.intro, vars)}</p>
            <p class="note">{fmt(t.warning, vars)}</p>
            {error ? (
              <div class="status status-invalid" role="alert" id="claim-error">
                <h2>{t.error_title}</h2>
                <p>{error}</p>
              </div>
            ) : null}
            <form method="post" action="" class="claim">
              <p class="field">
                <label class="label" for="destination">{fmt(t.address_label, vars)}</label>
                <input id="destination" name="destination" type="text" required autocomplete="off" spellcheck={false} autocapitalize="off"
                  value={typed ?? ''} aria-invalid={error ? 'true' : undefined} aria-describedby={error ? 'claim-error' : undefined} style="width:100%;min-height:44px;font-family:monospace" />
              </p>
              <p class="field">
                <label><input type="checkbox" name="confirm" value="yes" required /> {fmt(t.confirm_label, vars)}</label>
              </p>
              <button type="submit" style="min-height:44px">{t.submit}</button>
            </form>
          </section>
        ) : v.status === 'broadcast' || v.status === 'completed' ? (
          <section class="status status-paid"><h1>{t.status_sent}</h1><p>{fmt(t.status_sent_detail, vars)}</p></section>
        ) : v.status === 'cancelled' || v.status === 'failed' ? (
          <section class="status status-invalid"><h1>{t.status_closed}</h1><p>{fmt(t.status_closed_detail, vars)}</p></section>
        ) : (
          <section class="status status-detected"><h1>{t.claimed_title}</h1><p>{fmt(t.claimed_detail, vars)}</p></section>
        )}
      </main>
    </Shell>
  );
};

const MessagePage: FC<{ locale: Locale; t: RefundMessages; title: string; detail: string }> = ({ locale, t, title, detail }) => (
  <Shell locale={locale} title={title}>
    <main class="card">
      <header class="head"><LangSwitcher locale={locale} t={t} /></header>
      <section class="status status-invalid"><h1>{title}</h1><p>{detail}</p></section>
    </main>
  </Shell>
);

async function html(c: Context, node: unknown, status: 200 | 400 | 404 | 409 | 429): Promise<Response> {
  const body = '<!doctype html>' + String(await (node as { toString(): string | Promise<string> }).toString());
  return c.html(body, status, { 'Cache-Control': 'no-store' });
}

const localeOf = (c: Context, invoiceLocale?: string) =>
  pickLocale({ query: c.req.query('lang'), invoiceLocale, acceptLanguage: c.req.header('accept-language') });

export function registerClaimPage(app: OpenAPIHono<AppEnv>, deps: Deps, refunds: RefundService, perIp: MiddlewareHandler<AppEnv>): void {
  // Registered first so it runs last: it replaces the CSP that securityHeaders sets.
  app.use('/refund/*', async (c, next) => {
    await next();
    c.res.headers.set('Content-Security-Policy', CLAIM_CSP);
  });
  app.use('/refund/*', securityHeaders());
  app.use('/refund/*', perIp);

  const notFoundPage = (c: Context) => {
    const locale = localeOf(c);
    const t = REFUND_MESSAGES[locale];
    return html(c, <MessagePage locale={locale} t={t} title={t.not_found_title} detail={fmt(t.not_found_detail, { merchant_generic: t.merchant_generic })} />, 404);
  };

  const txidOf = async (id: string) => (await deps.sql<{ txid: string | null }[]>`select txid from refunds where id = ${id}`)[0]?.txid ?? null;

  app.get('/refund/:token', async (c) => {
    const v = await refunds.byToken(c.req.param('token'));
    if (!v) return notFoundPage(c);
    const locale = localeOf(c, v.locale);
    const res = await html(c, <ClaimPage chains={deps.config.chains} v={v} locale={locale} t={REFUND_MESSAGES[locale]} txid={await txidOf(v.id)} />, 200);
    res.headers.set('Content-Language', locale);
    return res;
  });

  app.post('/refund/:token', async (c) => {
    const token = c.req.param('token');
    const v = await refunds.byToken(token);
    if (!v) return notFoundPage(c);
    const locale = localeOf(c, v.locale);
    const t = REFUND_MESSAGES[locale];
    const form = await c.req.parseBody().catch(() => ({} as Record<string, unknown>));
    const typed = typeof form.destination === 'string' ? form.destination : '';
    if (v.status === 'awaiting_destination' && form.confirm !== 'yes') {
      return html(c, <ClaimPage chains={deps.config.chains} v={v} locale={locale} t={t} error={t.must_confirm} typed={typed} />, 400);
    }
    try {
      await refunds.claim(token, typed);
    } catch (err) {
      if (isKassaError(err) && err.status === 400) {
        const key = err.code as keyof RefundMessages;
        const message = key in t && key.startsWith('destination_') ? fmt(t[key], { network_label: networkLabel(v, locale, deps.config.chains) }) : err.message;
        return html(c, <ClaimPage chains={deps.config.chains} v={v} locale={locale} t={t} error={message} typed={typed} />, 400);
      }
      if (!(isKassaError(err) && (err.status === 409 || err.status === 422))) throw err;
      const now = (await refunds.byToken(token))!;
      return html(c, <ClaimPage chains={deps.config.chains} v={now} locale={locale} t={t} error={isKassaError(err) && err.status === 422 ? err.message : undefined} txid={await txidOf(now.id)} />, 409);
    }
    const after = (await refunds.byToken(token))!;
    return html(c, <ClaimPage chains={deps.config.chains} v={after} locale={locale} t={t} />, 200);
  });
}
