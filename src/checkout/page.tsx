/**
 * The checkout page, server-rendered with Hono JSX (every merchant-supplied string goes through
 * JSX text/attribute escaping; nothing is injected as raw HTML). One external stylesheet and one
 * external script (CSP allows 'self' only); the page works without the script (method links,
 * a refresh link) and the script adds live status, copy buttons and the countdown.
 */
import type { FC, PropsWithChildren } from 'hono/jsx';
import { fmt, LOCALE_NAMES, LOCALES, type Locale, type Messages } from './i18n.ts';
import type { PublicInvoice, PublicPaymentMethod } from './public-invoice.ts';
import { clock, methodGroups, networkLabel, paymentLine, showsPaymentPanel, statusText, viewOf } from './view.ts';
import { ASSET_VERSION } from './assets.ts';
import type { WalletNetwork } from './wallet.ts';

export interface CheckoutPageProps {
  inv: PublicInvoice;
  locale: Locale;
  t: Messages;
  method: PublicPaymentMethod | undefined;
  qr: string | null;
  now: Date;
  /** EVM networks of this invoice, for paying from a browser wallet (src/checkout/wallet.ts). */
  networks?: Record<string, WalletNetwork>;
}

const href = (params: Record<string, string | undefined>) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  return `?${q.toString()}`;
};

/** The document around every customer-facing page (checkout, refund claim): same head, stylesheet and policies. */
export const Shell: FC<PropsWithChildren<{ locale: Locale; title: string; bodyClass?: string; script?: boolean }>> = ({ locale, title, bodyClass, script, children }) => (
  <html lang={locale}>
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="referrer" content="no-referrer" />
      <meta name="robots" content="noindex, nofollow" />
      <title>{title}</title>
      <link rel="icon" href="data:," />
      <link rel="stylesheet" href={`/pay/static/checkout.css?v=${ASSET_VERSION}`} />
      {script ? <script src={`/pay/static/checkout.js?v=${ASSET_VERSION}`} defer></script> : null}
    </head>
    <body class={bodyClass}>{children}</body>
  </html>
);

const LangSwitcher: FC<{ locale: Locale; t: Messages; method?: string | undefined }> = ({ locale, t, method }) => (
  <nav class="lang" aria-label={t.language}>
    {LOCALES.map((l) => (
      <a href={href({ method, lang: l })} lang={l} data-lang={l} aria-current={l === locale ? 'true' : undefined} hreflang={l === locale ? undefined : l}>
        {LOCALE_NAMES[l]}
      </a>
    ))}
  </nav>
);

/** One payment: its amount and state, then its transaction id (linked to the explorer when configured). */
export const PaymentItem: FC<{ inv: PublicInvoice; p: PublicInvoice['payments'][number]; t: Messages }> = ({ inv, p, t }) => (
  <li>
    <span class="pline">{paymentLine(inv, p, t)}</span>{' '}
    <span class="tx">
      {t.transaction}:{' '}
      {p.explorer_url ? (
        <a href={p.explorer_url} rel="noreferrer noopener" aria-label={fmt(t.view_transaction, { txid: p.txid })}><code>{p.txid}</code></a>
      ) : (
        <code>{p.txid}</code>
      )}
    </span>
  </li>
);

/** One method's link: asset and network; inside an asset group the network leads (the asset is said to screen readers). */
const MethodLink: FC<{ m: PublicPaymentMethod; label: string; current: string | undefined; locale: Locale; grouped?: boolean }> = ({ m, label, current, locale, grouped }) => (
  <li>
    <a href={href({ method: m.method, lang: locale })} data-method={m.method} aria-current={m.method === current ? 'true' : undefined}>
      {grouped ? <span class="sr-only">{m.asset} </span> : <><span class="asset">{m.asset}</span> </>}
      <span class="chain">{label}</span>
    </a>
  </li>
);

export const CheckoutPage: FC<CheckoutPageProps> = ({ inv, locale, t, method, qr, now, networks }) => {
  const view = viewOf(inv);
  const status = statusText(inv, t);
  const labels = Object.fromEntries(inv.payment_methods.map((m) => [m.method, networkLabel(m, t)]));
  const panel = showsPaymentPanel(view) && method !== undefined;
  const expiresIn = Date.parse(inv.expires_at) - now.getTime();
  const paid = view === 'paid';
  return (
    <Shell locale={locale} title={fmt(t.html_title, { merchant: inv.merchant_name })} script>
      <main
        id="checkout"
        class="card"
        data-view={view}
        data-invoice={JSON.stringify(inv)}
        data-i18n={JSON.stringify(t)}
        data-labels={JSON.stringify(labels)}
        data-networks={JSON.stringify(networks ?? {})}
        data-method={method?.method ?? ''}
        data-lang={locale}
      >
        <header class="head">
          <LangSwitcher locale={locale} t={t} method={method?.method} />
          <p class="merchant" id="merchant-name">{inv.merchant_name}</p>
          {inv.description ? <p class="desc" id="description">{inv.description}</p> : null}
          <p class="price">
            <span class="label">{t.price}</span>{' '}
            <span id="price">{inv.amount} {inv.currency}</span>
          </p>
        </header>

        <section id="status" class={`status status-${view}`} role="status" aria-live="polite" aria-atomic="true">
          <h1 id="status-title" tabindex={-1}>{status.title}</h1>
          <p id="status-detail">{status.detail}</p>
          <p id="status-note" class="note" hidden={!status.note}>{status.note}</p>
          <p id="redirect" hidden={!(paid && inv.redirect_url)}>
            <span id="redirect-text">{fmt(t.redirecting, { merchant: inv.merchant_name })}</span>{' '}
            <a id="redirect-link" href={inv.redirect_url ?? '#'}>{fmt(t.return_link, { merchant: inv.merchant_name })}</a>
          </p>
        </section>

        <section id="pay" class="pay" hidden={!panel} aria-labelledby="pay-with">
          <h2 id="pay-with" class="label">{t.pay_with}</h2>
          <ul class="methods" id="methods">
            {methodGroups(inv.payment_methods).map((g) =>
              g.methods.length === 1 ? (
                <MethodLink m={g.methods[0]!} label={labels[g.methods[0]!.method] ?? ''} current={method?.method} locale={locale} />
              ) : (
                <li class="group">
                  <p class="group-name" id={`group-${g.asset}`}>
                    <span class="asset">{g.asset}</span>{' '}
                    <span class="on">{fmt(t.on_networks, { networks: g.methods.map((m) => labels[m.method]).join(t.list_separator) })}</span>
                  </p>
                  <ul class="networks" aria-labelledby={`group-${g.asset}`}>
                    {g.methods.map((m) => (
                      <MethodLink m={m} label={labels[m.method] ?? ''} current={method?.method} locale={locale} grouped />
                    ))}
                  </ul>
                </li>
              ),
            )}
          </ul>
          {method ? (
            <div class="chosen">
              <p class="countdown" id="countdown-wrap">
                {t.expires_in}{' '}
                <time id="countdown" datetime={inv.expires_at}>{expiresIn > 0 ? clock(expiresIn) : t.expired_clock}</time>
              </p>
              <dl class="fields">
                <div class="field network-field">
                  <dt>{t.network}</dt>
                  <dd id="network">{labels[method.method]}</dd>
                </div>
                <div class="field">
                  <dt id="amount-label">{t.amount}</dt>
                  <dd>
                    <span class="value">
                      <code id="amount" tabindex={-1}>{method.amount_due}</code> <span id="asset">{method.asset}</span>
                    </span>
                    <button type="button" class="copy" data-copy="amount" aria-label={t.copy_amount} hidden>{t.copy}</button>
                  </dd>
                </div>
                <div class="field">
                  <dt id="address-label">{t.address}</dt>
                  <dd>
                    <code id="address" class="value address">{method.address}</code>
                    <button type="button" class="copy" data-copy="address" aria-label={t.copy_address} hidden>{t.copy}</button>
                  </dd>
                </div>
              </dl>
              <div id="browser-wallets" class="browser-wallets" hidden></div>
              <p id="wallet-status" class="wallet-status" role="status" aria-live="polite" hidden></p>
              <p class="wallet">
                <a id="wallet-link" class="button" href={method.payment_uri}>{t.open_wallet}</a>
              </p>
              <p class="warn" id="send-only">{fmt(t.send_only, { asset: method.asset, network: labels[method.method] ?? '' })}</p>
              <div class="qr-block">
                <div class="qr">
                  <img
                    id="qr"
                    src={qr ?? ''}
                    width="256"
                    height="256"
                    alt={fmt(t.qr_alt, { amount: method.amount_due, asset: method.asset })}
                  />
                </div>
                <p class="hint">{t.scan_hint}</p>
              </div>
              <p id="method-status" class="sr-only" aria-live="polite"></p>
            </div>
          ) : null}
        </section>

        <section id="payments" class="payments" hidden={inv.payments.length === 0} aria-labelledby="payments-title">
          <h2 id="payments-title" class="label">{t.payments}</h2>
          <ul id="payment-list">
            {inv.payments.map((p) => (
              <PaymentItem inv={inv} p={p} t={t} />
            ))}
          </ul>
        </section>

        <p id="copy-status" class="sr-only" aria-live="polite"></p>
        <p id="live-status" class="muted" hidden>{t.live_paused}</p>
        <noscript>
          <p>
            <a href={href({ method: method?.method, lang: locale })}>{t.refresh}</a>
          </p>
        </noscript>
      </main>
    </Shell>
  );
};

export const MessagePage: FC<{ locale: Locale; t: Messages; title: string; detail: string }> = ({ locale, t, title, detail }) => (
  <Shell locale={locale} title={title}>
    <main class="card">
      <header class="head">
        <LangSwitcher locale={locale} t={t} />
      </header>
      <section class="status status-invalid">
        <h1>{title}</h1>
        <p>{detail}</p>
      </section>
    </main>
  </Shell>
);
