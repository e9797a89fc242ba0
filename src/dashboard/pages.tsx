/** The dashboard pages (Hono JSX, server-rendered). Buttons are shown with the same `can()` the routes enforce. */
import type { FC } from 'hono/jsx';
import type { InvoiceObject } from '../invoices/present.ts';
import type { PaymentObject } from '../invoices/payments.ts';
import type { ReconciliationReport } from '../reports/reconciliation.ts';
import type { BitcoinPaymentMethodView } from '../chains/bitcoin/payment-method.ts';
import type { EvmPaymentMethod } from '../chains/evm/payment-method.ts';
import type { ApiKey } from '../merchants/api-keys.ts';
import { SCOPES } from '../merchants/scopes.ts';
import { SPEED_POLICIES } from '../merchants/service.ts';
import { formatAmount, readableAmount } from '../money/amount.ts';
import type { AuditEntry, DashboardMerchant, DashboardUser, LoginChoice } from './auth.ts';
import { can, ROLE_DESCRIPTIONS, ROLES } from './permissions.ts';
import { Badge, Bare, Csrf, Layout, qs, When, duration, type PageCtx } from './layout.tsx';
import { InvoicesPerDayChart, RateMeter, VolumeChart } from './charts.tsx';
import { INVOICE_EXCEPTIONS, INVOICE_STATUSES } from '../invoices/status.ts';
import { type DeliveryRow, type InvoiceEventRow, type InvoiceListRow, type InvoiceSearch, type Overview } from './data.ts';
import { RefundsSection, type RefundsView } from './refunds-section.tsx';

/* ---------- sign-in, setup ---------- */

export const LoginPage: FC<{ csrf: string; error?: string | undefined; notice?: string | undefined; email?: string | undefined }> = ({ csrf, error, notice, email }) => (
  <Bare title="Sign in">
    <h1>Sign in</h1>
    {notice ? <p class="notice" role="status">{notice}</p> : null}
    {error ? <p class="error" role="alert" id="error">{error}</p> : null}
    <form method="post" action="/dashboard/login">
      <input type="hidden" name="_csrf" value={csrf} />
      <p class="field"><label for="email">E-mail</label><input id="email" name="email" type="email" autocomplete="username" required value={email ?? ''} /></p>
      <p class="field"><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required /></p>
      <p><button type="submit" id="sign-in">Sign in</button></p>
    </form>
  </Bare>
);

export const SecondFactorPage: FC<{ csrf: string; error?: string | undefined }> = ({ csrf, error }) => (
  <Bare title="Two-factor authentication">
    <h1>Two-factor authentication</h1>
    {error ? <p class="error" role="alert" id="error">{error}</p> : null}
    <form method="post" action="/dashboard/login/2fa">
      <input type="hidden" name="_csrf" value={csrf} />
      <p class="field">
        <label for="code">Code from your authenticator app (or a recovery code)</label>
        <input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required maxlength={20} />
      </p>
      <p><button type="submit" id="verify">Verify</button></p>
    </form>
  </Bare>
);

/** Your password opens accounts in several shops (one e-mail, one account per shop): pick one. */
export const ChooseAccountPage: FC<{ choice: LoginChoice; error?: string | undefined }> = ({ choice, error }) => (
  <Bare title="Choose the shop">
    <h1>Choose the shop</h1>
    <p class="muted">Your e-mail address and password open more than one shop. Which one do you want to work in?</p>
    {error ? <p class="error" role="alert" id="error">{error}</p> : null}
    <form method="post" action="/dashboard/login/choose">
      <input type="hidden" name="_csrf" value={choice.csrf} />
      <ul class="choices" id="shops">
        {choice.accounts.map((a) => (
          <li><button type="submit" name="account" value={a.userId} class="secondary">{a.merchantName} <span class="muted">({a.role})</span></button></li>
        ))}
      </ul>
    </form>
    <p class="muted">Each shop has its own account: its own password, two-factor codes and sessions.</p>
  </Bare>
);

export const SetupPage: FC<{ csrf: string; email: string; action: string; error?: string | undefined }> = ({ csrf, email, action, error }) => (
  <Bare title="Set your password">
    <h1>Set your password</h1>
    <p class="muted">For <strong id="setup-email">{email}</strong>. At least 12 characters; a passphrase works well.</p>
    {error ? <p class="error" role="alert" id="error">{error}</p> : null}
    <form method="post" action={action}>
      <input type="hidden" name="_csrf" value={csrf} />
      <input type="text" name="username" autocomplete="username" value={email} hidden />
      <p class="field"><label for="password">New password</label><input id="password" name="password" type="password" autocomplete="new-password" required minlength={12} /></p>
      <p class="field"><label for="confirm">Repeat it</label><input id="confirm" name="confirm" type="password" autocomplete="new-password" required minlength={12} /></p>
      <p><button type="submit" id="set-password">Set password</button></p>
    </form>
  </Bare>
);

export const MessagePage: FC<{ title: string; detail: string; link?: { href: string; label: string } }> = ({ title, detail, link }) => (
  <Bare title={title}>
    <h1>{title}</h1>
    <p id="message">{detail}</p>
    {link ? <p><a href={link.href}>{link.label}</a></p> : null}
  </Bare>
);

/** Asked before a sensitive action when the last sign-in or confirmation is older than a few minutes. */
export const ReauthPage: FC<{ ctx: PageCtx; next: string; totp: boolean; minutes: number }> = ({ ctx, next, totp, minutes }) => (
  <Layout ctx={ctx} title="Confirm it is you">
    <h1>Confirm it is you</h1>
    <p id="reauth-why">
      This action changes security or money settings. Enter your password{totp ? ' and a code from your authenticator app' : ''} again;
      you will not be asked again for {minutes} minutes. Then repeat the action.
    </p>
    <form method="post" action="/dashboard/reauth" id="reauth-form">
      <Csrf session={ctx.session} />
      <input type="hidden" name="next" value={next} />
      <input type="text" name="username" autocomplete="username" value={ctx.session.user.email} hidden />
      <p class="field"><label for="reauth-password">Password</label><input id="reauth-password" name="password" type="password" autocomplete="current-password" required /></p>
      {totp ? (
        <p class="field">
          <label for="reauth-code">Code from your authenticator app (or a recovery code)</label>
          <input id="reauth-code" name="code" inputmode="numeric" autocomplete="one-time-code" required maxlength={20} />
        </p>
      ) : null}
      <p><button type="submit" id="reauth-confirm">Confirm</button></p>
    </form>
  </Layout>
);

/* ---------- overview ---------- */

export const OverviewPage: FC<{ ctx: PageCtx; ov: Overview; days: number }> = ({ ctx, ov, days }) => (
  <Layout ctx={ctx} title="Overview">
    <div class="actions">
      <h1>Overview</h1>
      <span class="muted">
        UTC ·{' '}
        {[7, 30, 90].map((d, i) => <>{i > 0 ? ' · ' : ''}{d === days ? <strong>{d} days</strong> : <a href={`/dashboard?days=${d}`}>{d} days</a>}</>)}
      </span>
    </div>
    <div class="grid">
      <section class="card stat">
        <p class="label">Invoices created</p>
        <p class="value" id="stat-created">{ov.created}</p>
        <p class="muted">{ov.settled} settled</p>
      </section>
      <section class="card stat">
        <p class="label">Payment success rate</p>
        <p class="value" id="stat-success">{ov.successRate === null ? '—' : `${ov.successRate} %`}</p>
        <RateMeter percent={ov.successRate} label="Settled / created" />
        <p class="muted">settled / created</p>
      </section>
      <section class="card stat">
        <p class="label">Median time to settle</p>
        <p class="value" id="stat-median">{duration(ov.medianSettleSeconds)}</p>
        <p class="muted">automatic settlements, from creation</p>
      </section>
      <section class="card stat">
        <p class="label">Exceptions</p>
        <p class="value">{ov.exceptions.reduce((s, e) => s + e.n, 0)}</p>
        <p class="muted">
          {ov.exceptions.length === 0 ? 'none' : ov.exceptions.map((e, i) => <>{i > 0 ? ' · ' : ''}<a href={`/dashboard/invoices${qs({ exception: e.exception })}`}>{e.exception}: {e.n}</a></>)}
        </p>
      </section>
    </div>
    <section class="card">
      <h2>Invoices per day by outcome</h2>
      <InvoicesPerDayChart days={ov.days} />
    </section>
    <section class="card">
      <h2>Volume per asset</h2>
      {ov.volume.length === 0 ? <p class="muted">No payments in this period.</p> : null}
      <div class="grid">
        {ov.volume.map((v) => (
          <div>
            <p class="label">{v.method}</p>
            <p class="stat"><span class="value">{v.amount}</span> {v.asset}</p>
            <p class="muted">{v.payments} payment{v.payments === 1 ? '' : 's'} on {v.chain}</p>
            <VolumeChart method={v.method} asset={v.asset} perDay={v.perDay} days={ov.days.map((d) => d.day)} />
          </div>
        ))}
      </div>
    </section>
  </Layout>
);

/* ---------- invoices ---------- */

export const InvoicesPage: FC<{ ctx: PageCtx; f: InvoiceSearch & { fromText?: string; toText?: string }; methods: string[]; rows: InvoiceListRow[]; hasNext: boolean; hasPrev: boolean }> = ({ ctx, f, methods, rows, hasNext, hasPrev }) => {
  const base = { q: f.q, status: f.status, exception: f.exception, method: f.method, from: f.fromText, to: f.toText };
  return (
    <Layout ctx={ctx} title="Invoices">
      <h1>Invoices</h1>
      <section class="card">
        <form method="get" action="/dashboard/invoices" class="filters" role="search">
          <label class="field grow">Search<input name="q" id="q" value={f.q ?? ''} placeholder="Invoice id, order id, address or txid" /></label>
          <label class="field">Status
            <select name="status" id="status">
              <option value="">any</option>
              {INVOICE_STATUSES.map((s) => <option value={s} selected={f.status === s}>{s}</option>)}
            </select>
          </label>
          <label class="field">Exception
            <select name="exception" id="exception">
              <option value="">any or none</option>
              <option value="any" selected={f.exception === 'any'}>with an exception</option>
              <option value="none" selected={f.exception === 'none'}>none</option>
              {INVOICE_EXCEPTIONS.map((s) => <option value={s} selected={f.exception === s}>{s}</option>)}
            </select>
          </label>
          <label class="field">Method
            <select name="method" id="method">
              <option value="">any</option>
              {methods.map((s) => <option value={s} selected={f.method === s}>{s}</option>)}
            </select>
          </label>
          <label class="field">From<input type="date" name="from" id="from" value={f.fromText ?? ''} /></label>
          <label class="field">To<input type="date" name="to" id="to" value={f.toText ?? ''} /></label>
          <button type="submit" id="search">Search</button>
        </form>
      </section>
      <section class="card table-wrap" tabindex={0} role="region" aria-label="Invoices">
        <table id="invoices">
          <thead>
            <tr><th>Invoice</th><th>Order</th><th>Created</th><th>Status</th><th class="num">Amount</th><th class="num">Paid</th><th>Methods</th></tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr data-invoice={r.id}>
                <td><a href={`/dashboard/invoices/${r.id}`} class="mono">{r.id}</a></td>
                <td>{r.order_id ?? <span class="muted">—</span>}</td>
                <td><When at={r.created_at} /></td>
                <td><Badge value={r.status} /> <Badge value={r.exception} kind="exception" /></td>
                <td class="num">{formatAmount(r.amount, r.currency_decimals)} {r.currency}</td>
                <td class="num">{formatAmount(r.amount_paid, r.currency_decimals)}</td>
                <td class="muted">{r.methods.join(', ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {rows.length === 0 ? <p class="muted" id="no-results">No invoices match.</p> : null}
        <nav class="pager" aria-label="Pages">
          {hasPrev && rows[0] ? <a class="button secondary" href={`/dashboard/invoices${qs({ ...base, before: rows[0].id })}`} id="prev">← Newer</a> : null}
          {hasNext && rows.length ? <a class="button secondary" href={`/dashboard/invoices${qs({ ...base, after: rows[rows.length - 1]!.id })}`} id="next">Older →</a> : null}
        </nav>
      </section>
    </Layout>
  );
};

export type DashboardPayment = PaymentObject & { explorer_url: string | null };

const PaymentsTable: FC<{ payments: DashboardPayment[]; withInvoice?: boolean }> = ({ payments, withInvoice }) => (
  <table class="payments">
    <thead>
      <tr>
        {withInvoice ? <th>Invoice</th> : null}
        <th>Seen</th><th>Method</th><th class="num">Amount</th><th class="num">Value</th><th>Status</th><th class="num">Confirmations</th><th>Transaction</th>
      </tr>
    </thead>
    <tbody>
      {payments.map((p) => (
        <tr data-payment={p.id}>
          {withInvoice ? <td><a href={`/dashboard/invoices/${p.invoice_id}`} class="mono">{p.invoice_id}</a></td> : null}
          <td><When at={p.first_seen_at} /></td>
          <td>{p.method}</td>
          <td class="num">{p.amount} {p.asset}</td>
          <td class="num">{p.value ? `${p.value} ${p.currency}` : '—'}</td>
          <td><Badge value={p.status} />{p.late ? <> <Badge value="late" kind="exception" /></> : null}</td>
          <td class="num confirmations">{p.confirmations}</td>
          <td class="mono break">
            {p.explorer_url ? <a href={p.explorer_url} rel="noopener noreferrer" target="_blank">{p.txid}</a> : p.txid}
            {p.output_index >= 0 ? `:${p.output_index}` : ''}
          </td>
        </tr>
      ))}
    </tbody>
  </table>
);

export const InvoiceDetailPage: FC<{
  ctx: PageCtx;
  inv: InvoiceObject;
  payments: DashboardPayment[];
  events: InvoiceEventRow[];
  deliveries: DeliveryRow[] | null;
  refunds: RefundsView;
}> = ({ ctx, inv, payments, events, deliveries, refunds }) => {
  const role = ctx.session.user.role;
  const canMark = can(role, 'invoices:mark');
  const canRedeliver = can(role, 'webhooks:manage') && deliveries !== null;
  return (
    <Layout ctx={ctx} title={`Invoice ${inv.id}`}>
      <p><a href="/dashboard/invoices">← Invoices</a></p>
      <h1>Invoice <span class="mono" id="invoice-id">{inv.id}</span></h1>
      <div>
        <section class="card">
          <h2>Summary</h2>
          <dl class="kv two">
            <dt>Status</dt><dd id="invoice-status"><Badge value={inv.status} /></dd>
            <dt>Exception</dt><dd id="invoice-exception">{inv.exception ? <Badge value={inv.exception} kind="exception" /> : <span class="muted">none</span>}</dd>
            <dt>Amount</dt><dd id="invoice-amount">{inv.amount} {inv.currency}</dd>
            <dt>Paid</dt><dd id="invoice-paid">{inv.amount_paid} {inv.currency}</dd>
            <dt>Order id</dt><dd id="invoice-order">{inv.order_id ?? '—'}</dd>
            <dt>Description</dt><dd>{inv.description ?? '—'}</dd>
            <dt>Created</dt><dd><When at={inv.created_at} /></dd>
            <dt>Expires</dt><dd><When at={inv.expires_at} /></dd>
            <dt>Settled</dt><dd><When at={inv.settled_at} /></dd>
            <dt>Speed policy</dt><dd>{inv.speed_policy} · tolerance {inv.payment_tolerance_percent} %</dd>
            <dt>Checkout</dt><dd><a href={inv.checkout_url} class="break">{inv.checkout_url}</a></dd>
            {inv.marked ? (
              <>
                <dt>Marked</dt>
                <dd id="invoice-marked"><When at={inv.marked.at} /> by <span class="mono">{inv.marked.by}</span>: “{inv.marked.reason}”</dd>
              </>
            ) : null}
          </dl>
        </section>
        <section class="card table-wrap" tabindex={0} role="region" aria-label="Payment methods">
          <h2>Payment methods</h2>
          <table>
            <thead><tr><th>Method</th><th class="num">Price</th><th class="num">Paid</th><th>Address</th></tr></thead>
            <tbody>
              {inv.payment_methods.map((m) => (
                <tr><td>{m.method}<br /><span class="muted">rate {m.rate}</span></td><td class="num">{readableAmount(m.amount)} {m.asset}</td><td class="num">{readableAmount(m.amount_paid)}</td><td class="mono break">{m.address}</td></tr>
              ))}
            </tbody>
          </table>
        </section>
      </div>

      <section class="card table-wrap" tabindex={0} role="region" aria-label="Payments" id="payments-section">
        <h2>Payments</h2>
        {payments.length === 0 ? <p class="muted">No payments yet.</p> : <PaymentsTable payments={payments} />}
      </section>

      <RefundsSection ctx={ctx} inv={inv} view={refunds} />

      {canMark ? (
        <section class="card" id="mark-section">
          <h2>Mark manually</h2>
          <p class="muted">{inv.status === 'settled'
            ? 'This invoice is settled. You can still mark it invalid (e.g. the goods were not delivered); the reason is stored with the invoice, the ledger and the audit log.'
            : inv.status === 'invalid'
              ? 'This invoice is invalid. You can still accept it as paid; the reason is stored with the invoice, the ledger and the audit log.'
              : 'Accept the invoice as paid (e.g. a small shortfall) or mark it invalid. The reason is stored with the invoice, the ledger and the audit log.'}</p>
          <form method="post" action={`/dashboard/invoices/${inv.id}/mark`} id="mark-form">
            <Csrf session={ctx.session} />
            <p class="field"><label for="reason">Reason (required)</label><textarea id="reason" name="reason" required maxlength={500}></textarea></p>
            <div class="actions">
              {inv.status !== 'settled' ? <button type="submit" name="status" value="settled" id="mark-settled">Mark settled</button> : null}
              {inv.status !== 'invalid' ? <button type="submit" name="status" value="invalid" class="danger" id="mark-invalid">Mark invalid</button> : null}
            </div>
          </form>
        </section>
      ) : null}

      <section class="card" id="timeline">
        <h2>Timeline</h2>
        {deliveries === null ? <p class="muted">Webhook deliveries are not available in this deployment; events only.</p> : null}
        <ol class="timeline">
          {events.map((e) => {
            const obj = e.payload.data?.object;
            const ds = deliveries?.filter((d) => d.event_id === e.id) ?? [];
            return (
              <li data-event={e.id}>
                <strong>{e.type}</strong> · <When at={e.created_at} />
                {obj?.status ? <span class="muted"> · status {obj.status}{obj.exception ? ` (${obj.exception})` : ''}</span> : null}
                {e.type === 'invoice.marked' && obj?.marked ? <span class="muted"> · by {obj.marked.by}: “{obj.marked.reason}”</span> : null}
                {ds.length > 0 ? (
                  <ul class="muted">
                    {ds.map((d) => (
                      <li class="delivery">
                        webhook to <span class="mono">{d.url}</span>: <Badge value={d.status} /> after {d.attempt_count} attempt{d.attempt_count === 1 ? '' : 's'}
                        {d.last_status_code ? ` (HTTP ${d.last_status_code})` : ''}{d.last_error ? ` — ${d.last_error}` : ''}
                      </li>
                    ))}
                  </ul>
                ) : deliveries !== null ? <span class="muted"> · no webhook deliveries</span> : null}
                {canRedeliver ? (
                  <form method="post" action={`/dashboard/events/${e.id}/redeliver`} class="inline">
                    <Csrf session={ctx.session} />
                    <input type="hidden" name="invoice" value={inv.id} />{' '}
                    <button type="submit" class="link redeliver">Redeliver</button>
                  </form>
                ) : null}
              </li>
            );
          })}
        </ol>
      </section>
    </Layout>
  );
};

export const PaymentsPage: FC<{ ctx: PageCtx; payments: DashboardPayment[]; hasNext: boolean; hasPrev: boolean }> = ({ ctx, payments, hasNext, hasPrev }) => (
  <Layout ctx={ctx} title="Payments">
    <h1>Payments</h1>
    <section class="card table-wrap" tabindex={0} role="region" aria-label="Payments">
      {payments.length === 0 ? <p class="muted">No payments yet.</p> : <PaymentsTable payments={payments} withInvoice />}
      <nav class="pager" aria-label="Pages">
        {hasPrev && payments[0] ? <a class="button secondary" href={`/dashboard/payments?before=${payments[0].id}`}>← Newer</a> : null}
        {hasNext && payments.length ? <a class="button secondary" href={`/dashboard/payments?after=${payments[payments.length - 1]!.id}`}>Older →</a> : null}
      </nav>
    </section>
  </Layout>
);

/* ---------- reconciliation ---------- */

export const ReconciliationPage: FC<{ ctx: PageCtx; fromText: string; toText: string; report: ReconciliationReport | null }> = ({ ctx, fromText, toText, report }) => {
  const canExport = can(ctx.session.user.role, 'reports:export');
  return (
    <Layout ctx={ctx} title="Reconciliation">
      <h1>Reconciliation</h1>
      <section class="card">
        <form method="get" action="/dashboard/reconciliation" class="filters">
          <label class="field">From (inclusive)<input type="date" name="from" id="rec-from" value={fromText} required /></label>
          <label class="field">To (exclusive)<input type="date" name="to" id="rec-to" value={toText} required /></label>
          <button type="submit" id="rec-show">Show</button>
          {canExport && report ? <a class="button secondary" id="csv" href={`/dashboard/reconciliation.csv${qs({ from: fromText, to: toText })}`} download="">Export CSV</a> : null}
        </form>
      </section>
      {report ? (
        <>
          <div class="grid">
            <section class="card table-wrap" tabindex={0} role="region" aria-label="Per currency">
              <h2>Per currency</h2>
              <table id="per-currency">
                <thead><tr><th>Currency</th><th class="num">Invoices</th><th class="num">Expected</th><th class="num">Received</th><th class="num">Difference</th><th class="num">Refunded</th><th class="num">Net received</th></tr></thead>
                <tbody>
                  {report.totals.per_currency.map((c) => (
                    <tr><td>{c.currency}</td><td class="num">{c.invoices}</td><td class="num">{c.expected}</td><td class="num">{c.received}</td><td class="num">{c.difference}</td><td class="num">{c.refunded}</td><td class="num">{c.net_received}</td></tr>
                  ))}
                </tbody>
              </table>
              {report.totals.per_currency.length === 0 ? <p class="muted">No invoices in this period.</p> : null}
            </section>
            <section class="card table-wrap" tabindex={0} role="region" aria-label="Per asset">
              <h2>Per asset</h2>
              <table id="per-asset">
                <thead><tr><th>Method</th><th class="num">Payments</th><th class="num">Received</th><th class="num">Counted</th><th class="num">Not counted</th><th class="num">Refunds</th><th class="num">Refunded</th><th class="num">Net received</th></tr></thead>
                <tbody>
                  {report.totals.per_asset.map((a) => (
                    <tr><td>{a.method}</td><td class="num">{a.payments}</td><td class="num">{a.received} {a.asset}</td><td class="num">{a.counted}</td><td class="num">{a.not_counted}</td><td class="num">{a.refunds}</td><td class="num">{a.refunded}</td><td class="num">{a.net_received} {a.asset}</td></tr>
                  ))}
                </tbody>
              </table>
            </section>
          </div>
          <section class="card table-wrap" tabindex={0} role="region" aria-label="Unmatched and late payments">
            <h2>Unmatched and late payments</h2>
            {report.unmatched.length === 0 ? <p class="muted" id="unmatched-none">None.</p> : (
              <table id="unmatched">
                <thead><tr><th>Payment</th><th>Invoice</th><th>Reason</th><th class="num">Amount</th><th>Transaction</th></tr></thead>
                <tbody>
                  {report.unmatched.map((u) => (
                    <tr><td class="mono">{u.payment_id}</td><td><a class="mono" href={`/dashboard/invoices/${u.invoice_id}`}>{u.invoice_id}</a></td><td><Badge value={u.reason} kind="exception" /></td><td class="num">{u.amount} {u.method}</td><td class="mono break">{u.txid}</td></tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
          <section class="card">
            <h2>Verification mismatches</h2>
            {report.mismatches.length === 0 ? <p class="muted">None: every counted payment checked so far matches the node.</p> : (
              <ul id="mismatches">{report.mismatches.map((m) => <li><span class="mono">{m.txid}</span> ({m.payment_id}): {m.mismatch}</li>)}</ul>
            )}
          </section>
          <section class="card table-wrap" tabindex={0} role="region" aria-label="Invoice list">
            <h2>Invoices ({report.invoices.length})</h2>
            <table id="rec-invoices">
              <thead><tr><th>Invoice</th><th>Order</th><th>Status</th><th class="num">Expected</th><th class="num">Received</th><th class="num">Difference</th><th class="num">Not counted</th><th class="num">Refunded</th><th class="num">Net received</th><th class="num">Payments</th><th class="num">Refunds</th></tr></thead>
              <tbody>
                {report.invoices.map((i) => (
                  <tr>
                    <td><a class="mono" href={`/dashboard/invoices/${i.invoice_id}`}>{i.invoice_id}</a></td>
                    <td>{i.order_id ?? '—'}</td>
                    <td><Badge value={i.status} /> <Badge value={i.exception} kind="exception" /></td>
                    <td class="num">{i.expected} {i.currency}</td><td class="num">{i.received}</td><td class="num">{i.difference}</td><td class="num">{i.not_counted}</td>
                    <td class="num">{i.refunded}</td><td class="num">{i.net_received}</td><td class="num">{i.payments.length}</td><td class="num">{i.refunds.length}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
        </>
      ) : null}
    </Layout>
  );
};

/* ---------- settings ---------- */

const SettingsNav: FC<{ ctx: PageCtx }> = ({ ctx }) => {
  const role = ctx.session.user.role;
  const items = [
    { href: '/dashboard/settings', label: 'General', show: true },
    { href: '/dashboard/settings/keys', label: 'API keys', show: can(role, 'keys:manage') },
    { href: '/dashboard/settings/webhooks', label: 'Webhooks', show: can(role, 'webhooks:manage') },
    { href: '/dashboard/settings/users', label: 'Users', show: can(role, 'users:manage') },
  ];
  return (
    <nav class="actions" aria-label="Settings">
      {items.filter((i) => i.show).map((i) => (
        <a href={i.href} class={ctx.path === i.href ? 'button' : 'button secondary'} aria-current={ctx.path === i.href ? 'page' : undefined}>{i.label}</a>
      ))}
    </nav>
  );
};

export const SettingsPage: FC<{ ctx: PageCtx; merchant: DashboardMerchant; bitcoin: BitcoinPaymentMethodView | null; evm: (EvmPaymentMethod & { network: string })[]; evmChains: string[]; refundSinglePerson: boolean }> = ({ ctx, merchant, bitcoin, evm, evmChains, refundSinglePerson }) => {
  const role = ctx.session.user.role;
  const writable = can(role, 'settings:write');
  return (
    <Layout ctx={ctx} title="Settings">
      <h1>Settings</h1>
      <SettingsNav ctx={ctx} />
      <p></p>
      <section class="card" id="bitcoin-method">
        <h2>Bitcoin</h2>
        {bitcoin ? (
          <dl class="kv">
            <dt>Network</dt><dd>{bitcoin.network} ({bitcoin.address_type})</dd>
            <dt>Descriptor</dt><dd class="mono break" id="descriptor">{bitcoin.descriptor}</dd>
            <dt>First addresses</dt>
            <dd>
              <ol start={0} class="mono" id="first-addresses">{bitcoin.first_addresses.map((a) => <li class="break">{a.address}</li>)}</ol>
              <span class="muted">Check that your wallet shows the same addresses before taking payments.</span>
            </dd>
          </dl>
        ) : <p class="muted">Not set up. Use <code>PUT /v1/merchant/payment_methods/bitcoin</code> with your descriptor or xpub.</p>}
      </section>
      <section class="card" id="evm-methods">
        <h2>EVM treasuries</h2>
        {evmChains.length === 0 ? <p class="muted">No EVM chain is configured in this deployment.</p> : (
          <table>
            <thead><tr><th>Chain</th><th>Treasury</th><th>Assets</th></tr></thead>
            <tbody>
              {evmChains.map((chain) => {
                const m = evm.find((e) => e.chain === chain);
                return <tr><td>{chain}</td><td class="mono break">{m ? m.treasury : <span class="muted">not set up</span>}</td><td>{m ? m.assets.join(', ') : '—'}</td></tr>;
              })}
            </tbody>
          </table>
        )}
      </section>
      <section class="card" id="invoice-defaults">
        <h2>Invoice defaults</h2>
        <form method="post" action="/dashboard/settings">
          <Csrf session={ctx.session} />
          <div class="filters">
            <label class="field">Expiry (minutes)<input name="expiry_minutes" type="number" min="1" max="10080" required value={String(merchant.defaultExpirySeconds / 60)} disabled={!writable} /></label>
            <label class="field">Payment tolerance (%)<input name="tolerance_percent" required value={formatAmount(BigInt(merchant.paymentToleranceBps), 2)} disabled={!writable} inputmode="decimal" /></label>
            <label class="field">Speed policy
              <select name="speed_policy" disabled={!writable}>
                {SPEED_POLICIES.map((s) => <option value={s} selected={merchant.defaultSpeedPolicy === s}>{s}</option>)}
              </select>
            </label>
            {writable ? <button type="submit" id="save-settings">Save</button> : null}
          </div>
        </form>
      </section>
      {can(role, 'users:manage') ? (
        <section class="card" id="security">
          <h2>Security</h2>
          <form method="post" action="/dashboard/settings/require-2fa" class="actions">
            <Csrf session={ctx.session} />
            <span>Owners must use two-factor authentication: <strong>{merchant.requireOwner2fa ? 'required' : 'optional'}</strong></span>
            <input type="hidden" name="value" value={merchant.requireOwner2fa ? 'off' : 'on'} />
            <button type="submit" class="secondary">{merchant.requireOwner2fa ? 'Make optional' : 'Require for owners'}</button>
          </form>
        </section>
      ) : null}
      {can(role, 'refunds:approve') ? (
        <section class="card" id="refund-settings">
          <h2>Refunds</h2>
          <p class="muted">Finance staff and owners create refunds; an owner approves them. By default the person who created a refund cannot approve it.</p>
          <form method="post" action="/dashboard/settings/refunds" class="actions">
            <Csrf session={ctx.session} />
            <span>One person may create and approve the same refund: <strong id="refund-single-person">{refundSinglePerson ? 'allowed' : 'not allowed'}</strong></span>
            <input type="hidden" name="value" value={refundSinglePerson ? 'off' : 'on'} />
            <button type="submit" class="secondary" id="refund-single-person-toggle">{refundSinglePerson ? 'Require a second person' : 'Allow one person to do both'}</button>
          </form>
        </section>
      ) : null}
    </Layout>
  );
};

export const KeysPage: FC<{ ctx: PageCtx; keys: ApiKey[]; created?: { key: ApiKey; secret: string } | undefined }> = ({ ctx, keys, created }) => (
  <Layout ctx={ctx} title="API keys">
    <h1>API keys</h1>
    <SettingsNav ctx={ctx} />
    <p></p>
    {created ? (
      <section class="card" id="new-key">
        <p class="warn">Copy the secret now: it is not shown again.</p>
        <p class="secret" id="new-secret">{created.secret}</p>
      </section>
    ) : null}
    <section class="card table-wrap" tabindex={0} role="region" aria-label="API keys">
      <table id="keys">
        <thead><tr><th>Name</th><th>Prefix</th><th>Scopes</th><th>Created</th><th>Last used</th><th></th></tr></thead>
        <tbody>
          {keys.map((k) => (
            <tr data-key={k.id}>
              <td>{k.name || <span class="muted">—</span>}</td>
              <td class="mono">{k.prefix}…</td>
              <td>{k.scopes.join(', ')}</td>
              <td><When at={k.createdAt} /></td>
              <td><When at={k.lastUsedAt} /></td>
              <td>
                {k.revokedAt ? <Badge value="revoked" kind="exception" /> : (
                  <form method="post" action={`/dashboard/settings/keys/${k.id}/revoke`} class="inline">
                    <Csrf session={ctx.session} />
                    <button type="submit" class="danger">Revoke</button>
                  </form>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
    <section class="card">
      <h2>Create a key</h2>
      <form method="post" action="/dashboard/settings/keys">
        <Csrf session={ctx.session} />
        <p class="field"><label for="key-name">Name</label><input id="key-name" name="name" maxlength={100} /></p>
        <fieldset>
          <legend class="label">Scopes</legend>
          {SCOPES.map((s) => <label class="actions"><input type="checkbox" name="scopes" value={s} checked={s.endsWith(':read')} /> {s}</label>)}
        </fieldset>
        <p><button type="submit" id="create-key">Create key</button></p>
      </form>
    </section>
  </Layout>
);

export const UsersPage: FC<{ ctx: PageCtx; users: (DashboardUser & { activeSessions: number })[]; link?: { email: string; url: string; expiresAt: Date } | undefined }> = ({ ctx, users, link }) => (
  <Layout ctx={ctx} title="Users">
    <h1>Users</h1>
    <SettingsNav ctx={ctx} />
    <p></p>
    {link ? (
      <section class="card" id="setup-link">
        <p class="warn">Send this one-time setup link to {link.email}. It works once and expires <When at={link.expiresAt} />.</p>
        <p class="secret" id="setup-url">{link.url}</p>
      </section>
    ) : null}
    <section class="card table-wrap" tabindex={0} role="region" aria-label="Users">
      <table id="users">
        <thead><tr><th>E-mail</th><th>Role</th><th>2FA</th><th>Last sign-in</th><th>Sessions</th><th>Actions</th></tr></thead>
        <tbody>
          {users.map((u) => (
            <tr data-user={u.id}>
              <td>{u.email}{u.disabledAt ? <> <Badge value="revoked" kind="exception" /></> : !u.hasPassword ? <> <span class="badge">invited</span></> : null}</td>
              <td>
                <form method="post" action={`/dashboard/settings/users/${u.id}/role`} class="actions">
                  <Csrf session={ctx.session} />
                  <select name="role" aria-label={`Role of ${u.email}`} disabled={!!u.disabledAt}>
                    {ROLES.map((r) => <option value={r} selected={u.role === r}>{r}</option>)}
                  </select>
                  {u.disabledAt ? null : <button type="submit" class="secondary">Change</button>}
                </form>
              </td>
              <td>{u.totpEnabled ? 'on' : 'off'}</td>
              <td><When at={u.lastLoginAt} /></td>
              <td class="num">{u.activeSessions}</td>
              <td class="actions">
                {u.disabledAt ? null : (
                  <>
                    <form method="post" action={`/dashboard/settings/users/${u.id}/sessions/revoke`} class="inline"><Csrf session={ctx.session} /><button type="submit" class="secondary">End sessions</button></form>
                    <form method="post" action={`/dashboard/settings/users/${u.id}/setup-link`} class="inline"><Csrf session={ctx.session} /><button type="submit" class="secondary">New setup link</button></form>
                    {u.id === ctx.session.user.id ? null : <form method="post" action={`/dashboard/settings/users/${u.id}/revoke`} class="inline"><Csrf session={ctx.session} /><button type="submit" class="danger">Revoke</button></form>}
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
    <section class="card">
      <h2>Invite a user</h2>
      <form method="post" action="/dashboard/settings/users" class="filters">
        <Csrf session={ctx.session} />
        <label class="field grow">E-mail<input name="email" type="email" required id="invite-email" /></label>
        <label class="field">Role
          <select name="role" id="invite-role">{ROLES.map((r) => <option value={r} selected={r === 'viewer'}>{r}</option>)}</select>
        </label>
        <button type="submit" id="invite">Create setup link</button>
      </form>
      <ul class="muted">{ROLES.map((r) => <li><strong>{r}</strong>: {ROLE_DESCRIPTIONS[r]}</li>)}</ul>
    </section>
  </Layout>
);

export const AccountPage: FC<{
  ctx: PageCtx;
  enrol?: { secret: string; qr: string } | null | undefined;
  codes?: string[] | undefined;
  remaining: number;
  required: boolean;
}> = ({ ctx, enrol, codes, remaining, required }) => {
  const u = ctx.session.user;
  return (
    <Layout ctx={ctx} title="Your account">
      <h1>Your account</h1>
      {required && !u.totpEnabled ? <p class="warn" id="twofa-required">This merchant requires owners to use two-factor authentication. Set it up to continue.</p> : null}
      <section class="card">
        <dl class="kv"><dt>E-mail</dt><dd>{u.email}</dd><dt>Role</dt><dd>{u.role}</dd></dl>
      </section>
      <section class="card" id="two-factor">
        <h2>Two-factor authentication</h2>
        {codes ? (
          <div id="recovery">
            <p class="notice">Two-factor authentication is on. Store these recovery codes somewhere safe: each works once, and they are not shown again.</p>
            <ul class="codes" id="recovery-codes">{codes.map((c) => <li>{c}</li>)}</ul>
            <p><a href="/dashboard">Continue</a></p>
          </div>
        ) : u.totpEnabled ? (
          <>
            <p id="twofa-status">On. {remaining} recovery code{remaining === 1 ? '' : 's'} left.</p>
            {required && u.role === 'owner' ? <p class="muted">Required for owners of this merchant.</p> : (
              <form method="post" action="/dashboard/account/2fa/disable">
                <Csrf session={ctx.session} />
                <button type="submit" class="danger">Turn off</button>
              </form>
            )}
          </>
        ) : enrol ? (
          <>
            <p>Scan the QR code with an authenticator app, or type the secret, then enter the 6-digit code it shows.</p>
            <p class="qr"><img src={enrol.qr} alt="QR code with the two-factor secret" width="200" height="200" id="totp-qr" /></p>
            <p>Secret: <code id="totp-secret">{enrol.secret}</code></p>
            <form method="post" action="/dashboard/account/2fa/confirm" class="filters">
              <Csrf session={ctx.session} />
              <label class="field">Code<input name="code" id="totp-code" inputmode="numeric" autocomplete="one-time-code" required maxlength={6} /></label>
              <button type="submit" id="totp-confirm">Turn on</button>
            </form>
          </>
        ) : (
          <form method="post" action="/dashboard/account/2fa/start">
            <Csrf session={ctx.session} />
            <p>Off.</p>
            <button type="submit" id="totp-start">Set up two-factor authentication</button>
          </form>
        )}
      </section>
    </Layout>
  );
};

export const AuditPage: FC<{ ctx: PageCtx; entries: AuditEntry[]; nextBefore: string | null }> = ({ ctx, entries, nextBefore }) => (
  <Layout ctx={ctx} title="Audit log">
    <h1>Audit log</h1>
    <section class="card table-wrap" tabindex={0} role="region" aria-label="Audit log">
      <table id="audit">
        <thead><tr><th>When</th><th>Who</th><th>What</th><th>Target</th><th>Details</th><th>IP</th></tr></thead>
        <tbody>
          {entries.map((e) => (
            <tr data-action={e.action}>
              <td><When at={e.created_at} /></td>
              <td>{e.actor_email ?? e.actor}</td>
              <td><strong>{e.action}</strong></td>
              <td class="mono">{e.target ?? ''}</td>
              <td class="mono break">{Object.keys(e.details).length ? JSON.stringify(e.details) : ''}</td>
              <td class="mono">{e.ip ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {nextBefore ? <nav class="pager"><a class="button secondary" href={`/dashboard/audit?before=${nextBefore}`}>Older →</a></nav> : null}
    </section>
  </Layout>
);
