/**
 * The refunds of an invoice on its dashboard page (docs/refunds.md, "In the dashboard"): the form
 * that creates one (finance, owners), each refund with its state and claim link, the owner's
 * approval, and the sending step — for EVM the "Send with your browser wallet" button (the one
 * script of the dashboard, src/dashboard/refund-wallet.client.js, served from /dashboard/static/),
 * the EIP-681 link and a "report the transaction" form; for Bitcoin the unsigned PSBT to download
 * and the signed one to upload. Every form carries the session's CSRF token; buttons are shown with
 * the same `can()` the routes enforce.
 */
import type { FC } from 'hono/jsx';
import type { InvoiceObject } from '../invoices/present.ts';
import type { RefundObject } from '../refunds/service.ts';
import type { WalletNetwork } from '../checkout/wallet.ts';
import { readableAmount } from '../money/amount.ts';
import { can } from './permissions.ts';
import { Badge, Csrf, When, type PageCtx } from './layout.tsx';
import { DASHBOARD_ASSET_VERSION } from './assets.ts';

/** Invoices a refund can be created on: settled, or paid with an exception (over, partial, late). */
export const REFUNDABLE_EXCEPTIONS = ['paid_over', 'paid_partial', 'paid_late'] as const;

export function refundable(inv: Pick<InvoiceObject, 'status' | 'exception'>): boolean {
  return inv.status === 'settled' || (REFUNDABLE_EXCEPTIONS as readonly string[]).includes(inv.exception ?? '');
}

export interface DashboardRefund extends RefundObject {
  /** The dashboard user who created it (null: created over the API). */
  created_by: { id: string; email: string } | null;
  approved_by: { id: string; email: string } | null;
  explorer_url: string | null;
  /** EVM, awaiting a signature: the network for the wallet and a QR code of the EIP-681 link. */
  wallet: { network: WalletNetwork; qr: string | null } | null;
}

export interface RefundsView {
  refunds: DashboardRefund[];
  /** The methods the invoice received confirmed payments in (what can be refunded). */
  paidMethods: { method: string; asset: string }[];
  /** The merchant allows the creator of a refund to approve it too. */
  singlePerson: boolean;
}

const STATUS_TEXT: Record<RefundObject['status'], string> = {
  awaiting_destination: 'waiting for the customer to enter their address',
  awaiting_approval: 'claimed: waiting for an owner to approve',
  awaiting_signature: 'approved: waiting to be sent from your wallet',
  broadcast: 'sent: waiting for confirmations',
  completed: 'completed',
  cancelled: 'cancelled',
  failed: 'failed',
};

const CANCELLABLE: readonly RefundObject['status'][] = ['awaiting_destination', 'awaiting_approval', 'awaiting_signature'];

function requestedText(r: RefundObject): string {
  const basis = r.rate_basis === 'rate_then' ? 'the invoice rate' : r.rate_basis === 'current' ? 'the rate at the claim' : `the fixed rate ${r.rate ?? ''}`;
  if (r.requested.kind === 'full') return 'everything received';
  if (r.requested.kind === 'overpaid') return `the overpaid part, at ${basis}`;
  return r.requested.currency === r.asset ? `${readableAmount(r.requested.amount ?? '0')} ${r.asset}` : `${r.requested.amount} ${r.requested.currency}, at ${basis}`;
}

const RefundForm: FC<{ ctx: PageCtx; inv: InvoiceObject; view: RefundsView }> = ({ ctx, inv, view }) => {
  const assets = [...new Set(view.paidMethods.map((m) => m.asset))];
  return (
    <form method="post" action={`/dashboard/invoices/${inv.id}/refunds`} id="refund-form">
      <Csrf session={ctx.session} />
      {view.paidMethods.length > 1 ? (
        <p class="field">
          <label for="refund-method">Refund in</label>
          <select id="refund-method" name="method">
            {view.paidMethods.map((m) => <option value={m.method}>{m.method}</option>)}
          </select>
        </p>
      ) : <input type="hidden" name="method" value={view.paidMethods[0]?.method ?? ''} />}
      <fieldset class="field">
        <legend>Amount</legend>
        <label><input type="radio" name="amount_kind" value="full" id="refund-full" checked /> Everything received (less other refunds)</label><br />
        {inv.exception === 'paid_over' ? <><label><input type="radio" name="amount_kind" value="overpaid" id="refund-overpaid" /> The overpaid part ({inv.amount_paid} paid for {inv.amount} {inv.currency})</label><br /></> : null}
        <label><input type="radio" name="amount_kind" value="decimal" id="refund-decimal" /> This amount:</label>{' '}
        <input type="text" name="amount" id="refund-amount" inputmode="decimal" autocomplete="off" maxlength={40} aria-label="Amount to refund" />{' '}
        <select name="amount_currency" id="refund-amount-currency" aria-label="Currency of the amount">
          <option value={inv.currency}>{inv.currency}</option>
          {assets.filter((a) => a !== inv.currency).map((a) => <option value={a}>{a}</option>)}
        </select>
      </fieldset>
      <p class="field">
        <label for="refund-rate-basis">Rate (for an amount in {inv.currency})</label>
        <select id="refund-rate-basis" name="rate_basis">
          <option value="rate_then">The invoice's locked rate</option>
          <option value="current">The exchange rate when the customer claims</option>
          <option value="fixed">A fixed rate:</option>
        </select>{' '}
        <input type="text" name="rate" id="refund-rate" inputmode="decimal" autocomplete="off" maxlength={40} aria-label={`Fixed rate: price of one unit of the asset in ${inv.currency}`} placeholder={`${inv.currency} per unit`} />
      </p>
      <p class="field">
        <label for="refund-fee">Fee to deduct, in the asset (optional)</label>
        <input type="text" name="fee" id="refund-fee" inputmode="decimal" autocomplete="off" maxlength={40} />
      </p>
      <p class="field">
        <label for="refund-reason">Reason (shown in the refund and its webhooks)</label>
        <textarea id="refund-reason" name="reason" maxlength={500}></textarea>
      </p>
      <div class="actions"><button type="submit" id="refund-create">Create refund</button></div>
      <p class="muted">The customer receives a claim link (by e-mail when the invoice has a buyer e-mail) to enter their own address; then an owner approves, and the refund is sent from your wallet.</p>
    </form>
  );
};

const EvmSend: FC<{ ctx: PageCtx; inv: InvoiceObject; r: DashboardRefund }> = ({ ctx, inv, r }) => {
  const t = r.evm?.transaction;
  if (!t || !r.wallet) return null;
  const native = t.data === '0x';
  return (
    <div class="evm-send" id={`send-${r.id}`}>
      <p>Send exactly this transaction from {t.from ? <>your treasury <span class="mono break">{t.from}</span></> : 'your wallet'} on {r.wallet.network.name}{r.wallet.network.name.includes(String(t.chain_id)) ? '' : ` (chain id ${t.chain_id})`}:
        {native ? <> {readableAmount(r.amount)} {r.asset} to <span class="mono break">{r.destination}</span>.</>
          : <> a {r.asset} transfer of {readableAmount(r.amount)} {r.asset} to <span class="mono break">{r.destination}</span> (the transaction goes to the token contract <span class="mono break">{t.to}</span>).</>}
      </p>
      <p>
        <button type="button" class="wallet-send" id={`wallet-send-${r.id}`} hidden
          data-refund={r.id} data-tx={JSON.stringify(t)} data-network={JSON.stringify(r.wallet.network)}>Send with your browser wallet</button>
      </p>
      <p class="muted wallet-none" id={`wallet-none-${r.id}`}>No browser wallet found on this page: use the link below, or send it from any wallet and report the transaction.</p>
      <p class="wallet-status" id={`wallet-status-${r.id}`} role="status" aria-live="polite"></p>
      {r.evm?.link ? (
        <p>EIP-681 link for a wallet app: <a href={r.evm.link} class="mono break" id={`eip681-${r.id}`}>{r.evm.link}</a>
          {r.wallet.qr ? <><br /><img class="qr" src={r.wallet.qr} alt={`QR code of the EIP-681 link of refund ${r.id}`} width={180} height={180} /></> : null}</p>
      ) : null}
      <TxidForm ctx={ctx} inv={inv} r={r} />
    </div>
  );
};

const TxidForm: FC<{ ctx: PageCtx; inv: InvoiceObject; r: DashboardRefund }> = ({ ctx, inv, r }) => (
  <form method="post" action={`/dashboard/invoices/${inv.id}/refunds/${r.id}/transaction`} id={`txid-form-${r.id}`} class="inline-form">
    <Csrf session={ctx.session} />
    <label for={`txid-${r.id}`}>{r.status === 'broadcast' ? 'Your wallet replaced the transaction (speed up)? Its new hash:' : 'Sent it another way? The transaction hash:'}</label>{' '}
    <input type="text" name="txid" id={`txid-${r.id}`} class="mono" autocomplete="off" spellcheck={false} maxlength={100} pattern="0x[0-9a-fA-F]{64}" required placeholder="0x…" />{' '}
    <button type="submit" class="secondary" id={`txid-report-${r.id}`}>Report transaction</button>
  </form>
);

const BitcoinSend: FC<{ ctx: PageCtx; inv: InvoiceObject; r: DashboardRefund }> = ({ ctx, inv, r }) => (
  <div class="btc-send" id={`send-${r.id}`}>
    <p>Network fee {r.bitcoin?.network_fee ?? '—'} BTC ({r.bitcoin?.fee_rate ?? '—'} sat/vB), paid from the invoice's own outputs.</p>
    <p><a class="button secondary" id={`psbt-download-${r.id}`} href={`/dashboard/invoices/${inv.id}/refunds/${r.id}/psbt`} download="">Download the unsigned PSBT</a></p>
    <p class="muted">Sign it in your wallet (Sparrow: File → Open Transaction → From File; a hardware wallet signs it there), then upload the signed PSBT: Kassa checks it is this refund's transaction, finalizes it and broadcasts it.</p>
    <form method="post" action={`/dashboard/invoices/${inv.id}/refunds/${r.id}/signed_psbt`} enctype="multipart/form-data" id={`psbt-form-${r.id}`}>
      <Csrf session={ctx.session} />
      <p class="field"><label for={`psbt-file-${r.id}`}>Signed PSBT file</label><input type="file" name="psbt_file" id={`psbt-file-${r.id}`} accept=".psbt,.txt,application/octet-stream,text/plain" /></p>
      <p class="field"><label for={`psbt-text-${r.id}`}>or paste it (base64)</label><textarea name="psbt" id={`psbt-text-${r.id}`} class="mono" spellcheck={false}></textarea></p>
      <div class="actions"><button type="submit" id={`psbt-upload-${r.id}`}>Upload and broadcast</button></div>
    </form>
  </div>
);

const RefundRow: FC<{ ctx: PageCtx; inv: InvoiceObject; r: DashboardRefund; view: RefundsView }> = ({ ctx, inv, r, view }) => {
  const role = ctx.session.user.role;
  const me = ctx.session.user.id;
  const ownRefund = r.created_by?.id === me;
  const mayApprove = can(role, 'refunds:approve') && r.status === 'awaiting_approval';
  return (
    <li class="refund card" id={`refund-${r.id}`} data-status={r.status}>
      <p>
        <strong class="mono">{r.id}</strong> <Badge value={r.status} /> <span class="muted" id={`refund-status-${r.id}`}>{STATUS_TEXT[r.status]}</span>
      </p>
      <dl class="kv two">
        <dt>Amount</dt><dd id={`refund-amount-${r.id}`}>{readableAmount(r.amount)} {r.asset}{r.fee !== '0' && /[1-9]/.test(r.fee) ? <span class="muted"> (after a fee of {readableAmount(r.fee)} {r.asset})</span> : null}</dd>
        <dt>Requested</dt><dd>{requestedText(r)}{r.rate && r.rate_locked_at ? <span class="muted"> · rate {r.rate}, locked <When at={r.rate_locked_at} /></span> : null}</dd>
        {r.reason ? <><dt>Reason</dt><dd>{r.reason}</dd></> : null}
        <dt>Created</dt><dd><When at={r.created_at} /> by {r.created_by ? r.created_by.email : 'the API'}</dd>
        {r.approved_at ? <><dt>Approved</dt><dd><When at={r.approved_at} />{r.approved_by ? ` by ${r.approved_by.email}` : ' over the API'}</dd></> : null}
        {r.destination ? <><dt>Customer's address</dt><dd class="mono break" id={`refund-destination-${r.id}`}>{r.destination}</dd></> : null}
        {r.txid ? <><dt>Transaction</dt><dd class="mono break" id={`refund-txid-${r.id}`}>{r.explorer_url ? <a href={r.explorer_url} rel="noreferrer noopener">{r.txid}</a> : r.txid}</dd></> : null}
        {r.failure_reason ? <><dt>Failure</dt><dd>{r.failure_reason}</dd></> : null}
      </dl>
      {/* The claim link chooses where the money goes: only those who create refunds see it, not viewers. */}
      {r.claim_url && can(role, 'refunds:create') ? (
        <p class="field">
          <label for={`claim-url-${r.id}`}>Claim link for the customer</label>
          <input type="text" readonly id={`claim-url-${r.id}`} class="mono" value={r.claim_url} />
          <a href={r.claim_url} rel="noreferrer noopener" class="muted"> open</a>
        </p>
      ) : null}
      {mayApprove ? (
        ownRefund && !view.singlePerson ? (
          <p class="muted" id={`approve-other-${r.id}`}>You created this refund: another owner approves it (Settings can allow one person to do both).</p>
        ) : (
          <form method="post" action={`/dashboard/invoices/${inv.id}/refunds/${r.id}/approve`} id={`approve-form-${r.id}`} class="inline-form">
            <Csrf session={ctx.session} />
            {r.bitcoin ? <><label for={`fee-rate-${r.id}`}>Fee rate (sat/vB, empty: the node's estimate)</label>{' '}<input type="text" name="fee_rate" id={`fee-rate-${r.id}`} inputmode="decimal" maxlength={20} />{' '}</> : null}
            <button type="submit" id={`approve-${r.id}`}>Approve refund of {readableAmount(r.amount)} {r.asset}</button>
          </form>
        )
      ) : null}
      {can(role, 'refunds:sign') && r.status === 'awaiting_signature' ? (r.bitcoin ? <BitcoinSend ctx={ctx} inv={inv} r={r} /> : <EvmSend ctx={ctx} inv={inv} r={r} />) : null}
      {can(role, 'refunds:sign') && r.status === 'broadcast' && r.evm ? <TxidForm ctx={ctx} inv={inv} r={r} /> : null}
      {can(role, 'refunds:create') && CANCELLABLE.includes(r.status) ? (
        <form method="post" action={`/dashboard/invoices/${inv.id}/refunds/${r.id}/cancel`} class="inline-form">
          <Csrf session={ctx.session} />
          <button type="submit" class="danger" id={`cancel-${r.id}`}>Cancel refund</button>
        </form>
      ) : null}
    </li>
  );
};

export const RefundsSection: FC<{ ctx: PageCtx; inv: InvoiceObject; view: RefundsView }> = ({ ctx, inv, view }) => {
  const role = ctx.session.user.role;
  const showForm = can(role, 'refunds:create') && refundable(inv) && view.paidMethods.length > 0;
  const wallet = view.refunds.some((r) => r.wallet !== null) && can(role, 'refunds:sign');
  return (
    <section class="card" id="refunds">
      <h2>Refunds</h2>
      {view.refunds.length === 0 ? <p class="muted" id="refunds-none">No refunds.</p> : (
        <ol class="refunds">{view.refunds.map((r) => <RefundRow ctx={ctx} inv={inv} r={r} view={view} />)}</ol>
      )}
      {showForm ? <><h3>New refund</h3><RefundForm ctx={ctx} inv={inv} view={view} /></> : null}
      {wallet ? <script src={`/dashboard/static/refund-wallet.js?v=${DASHBOARD_ASSET_VERSION}`} defer></script> : null}
    </section>
  );
};
