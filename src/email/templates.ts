/**
 * Customer e-mail templates (plain text + HTML) in English and Simplified Chinese. Everything that
 * comes from the merchant or the invoice is HTML-escaped in the HTML part. Refund e-mails carry the
 * refund instead of the invoice's description (the customer's own address and the transaction).
 */
export const EMAIL_KINDS = ['payment_detected', 'paid', 'partial_payment', 'expired', 'late_payment', 'refund_claim', 'refund_completed'] as const;
export type EmailKind = (typeof EMAIL_KINDS)[number];
export type EmailLocale = 'en' | 'zh-CN';

export interface EmailContext {
  merchantName: string;
  invoiceId: string;
  orderId: string | null;
  description: string | null;
  amount: string;
  currency: string;
  amountPaid: string;
  /** What is still due (partial payments). */
  amountDue: string;
  checkoutUrl: string;
  /** Refund e-mails: the refund (amount in the asset), its claim link and, once sent, where and how. */
  refund?: {
    amount: string;
    asset: string;
    /** The amount is set when the customer claims (rate basis `current`). */
    amountAtClaim: boolean;
    claimUrl: string | null;
    destination: string | null;
    txid: string | null;
  } | undefined;
}

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

/** Longest merchant-controlled texts in an e-mail (characters); longer ones are cut with "…". */
export const EMAIL_TEXT_LIMITS = { merchantName: 100, orderId: 100, description: 200 } as const;

/** Control characters removed and the length bounded: merchant text can never fill an e-mail. */
export function boundText(s: string, max: number): string {
  const clean = s.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, '').replace(/\s+/g, ' ').trim();
  const chars = [...clean];
  return chars.length > max ? chars.slice(0, max - 1).join('') + '…' : clean;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function emailLocale(locale: string | null | undefined): EmailLocale {
  return locale === 'zh-CN' ? 'zh-CN' : 'en';
}

/** A piece of copy: literal text and `{field}` placeholders filled from the context. */
type Copy = { subject: string; lines: string[]; link?: string };
/** Copy for a refund e-mail: `link` is the claim link's text; `at_claim` is added when the amount is set at the claim. */
type RefundCopy = Copy & { at_claim?: string };

const COPY: Record<EmailLocale, Record<EmailKind, RefundCopy> & { order: string; invoice: string; footer: string }> = {
  en: {
    order: 'Order',
    invoice: 'Invoice',
    footer: 'This message was sent on behalf of {merchant} by its payment system. Please do not reply.',
    payment_detected: {
      subject: 'Payment received for your order at {merchant}',
      lines: ['We have detected your payment of {amount_paid} {currency} for {ref}.', 'It is now being confirmed on the blockchain; we will let you know when it is complete.'],
    },
    paid: {
      subject: 'Payment complete: {merchant}',
      lines: ['Your payment of {amount_paid} {currency} for {ref} is confirmed.', 'Thank you for your purchase.'],
    },
    partial_payment: {
      subject: 'Partial payment received: {amount_due} {currency} still due',
      lines: ['We received {amount_paid} {currency} of {amount} {currency} for {ref}.', 'The remaining amount is {amount_due} {currency}. Please complete the payment before the invoice expires:'],
      link: 'Complete the payment',
    },
    expired: {
      subject: 'Invoice expired: {merchant}',
      lines: ['The invoice for {ref} ({amount} {currency}) expired before it was paid in full.', 'If you already sent a payment or still want to buy, please contact {merchant}.'],
    },
    late_payment: {
      subject: 'Late payment received: {merchant}',
      lines: ['We received your payment for {ref} after the invoice had expired.', 'The payment is recorded; {merchant} will contact you about completing the order or a refund.'],
    },
    refund_claim: {
      subject: 'Your refund from {merchant}: {refund_amount} {refund_asset}',
      lines: [
        '{merchant} is refunding {refund_amount} {refund_asset} for {ref}.',
        'To receive it, open the link below and enter the address of a {refund_asset} wallet that you control. Do not enter an exchange deposit address or the address you paid from, unless you are sure it is yours: a refund sent there may be lost.',
      ],
      at_claim: 'The amount is converted at the exchange rate of the moment you enter your address.',
      link: 'Claim your refund',
    },
    refund_completed: {
      subject: 'Refund sent: {refund_amount} {refund_asset} from {merchant}',
      lines: ['Your refund of {refund_amount} {refund_asset} for {ref} was sent to {destination} and is confirmed.', 'Transaction: {txid}'],
    },
  },
  'zh-CN': {
    order: '订单',
    invoice: '账单',
    footer: '此邮件由 {merchant} 的支付系统代为发送，请勿直接回复。',
    payment_detected: {
      subject: '已收到您在 {merchant} 的付款',
      lines: ['我们已检测到您为 {ref} 支付的 {amount_paid} {currency}。', '该付款正在区块链上确认，完成后我们会通知您。'],
    },
    paid: {
      subject: '付款已完成：{merchant}',
      lines: ['您为 {ref} 支付的 {amount_paid} {currency} 已确认。', '感谢您的购买。'],
    },
    partial_payment: {
      subject: '已收到部分付款：仍需支付 {amount_due} {currency}',
      lines: ['我们已收到 {ref} 的 {amount_paid} {currency}（总额 {amount} {currency}）。', '剩余金额为 {amount_due} {currency}，请在账单过期前完成付款：'],
      link: '完成付款',
    },
    expired: {
      subject: '账单已过期：{merchant}',
      lines: ['{ref}（{amount} {currency}）的账单在全额付款前已过期。', '如果您已经付款或仍想购买，请联系 {merchant}。'],
    },
    late_payment: {
      subject: '收到逾期付款：{merchant}',
      lines: ['我们在账单过期后收到了您为 {ref} 的付款。', '该付款已记录，{merchant} 将与您联系，完成订单或安排退款。'],
    },
    refund_claim: {
      subject: '{merchant} 向您退款：{refund_amount} {refund_asset}',
      lines: [
        '{merchant} 正在为 {ref} 向您退款 {refund_amount} {refund_asset}。',
        '请打开下面的链接，输入您本人控制的 {refund_asset} 钱包地址。除非确定是您自己的地址，否则请不要输入交易所充值地址或您付款时使用的地址：退款发送到那里可能会丢失。',
      ],
      at_claim: '金额按您输入地址时的汇率换算。',
      link: '领取退款',
    },
    refund_completed: {
      subject: '退款已发出：{merchant} 退还 {refund_amount} {refund_asset}',
      lines: ['您为 {ref} 收到的退款 {refund_amount} {refund_asset} 已发送到 {destination}，并已确认。', '交易：{txid}'],
    },
  },
};

function fill(template: string, values: Record<string, string>, escape: (s: string) => string): string {
  return template
    .split(/(\{[a-z_]+\})/)
    .map((part) => {
      const m = /^\{([a-z_]+)\}$/.exec(part);
      return m && m[1]! in values ? escape(values[m[1]!]!) : escape(part);
    })
    .join('');
}

export function renderEmail(kind: EmailKind, locale: string | null | undefined, input: EmailContext): RenderedEmail {
  const ctx: EmailContext = {
    ...input,
    merchantName: boundText(input.merchantName, EMAIL_TEXT_LIMITS.merchantName),
    orderId: input.orderId === null ? null : boundText(input.orderId, EMAIL_TEXT_LIMITS.orderId),
    description: input.description === null ? null : boundText(input.description, EMAIL_TEXT_LIMITS.description) || null,
  };
  const lang = emailLocale(locale);
  const copy = COPY[lang];
  const c = copy[kind];
  const ref = ctx.orderId ? `${copy.order} ${ctx.orderId}` : `${copy.invoice} ${ctx.invoiceId}`;
  const refund = ctx.refund;
  const values: Record<string, string> = {
    merchant: ctx.merchantName, ref, amount: ctx.amount, currency: ctx.currency,
    amount_paid: ctx.amountPaid, amount_due: ctx.amountDue,
    refund_amount: refund?.amount ?? '', refund_asset: refund?.asset ?? '', destination: refund?.destination ?? '', txid: refund?.txid ?? '',
  };
  // The link of the e-mail: the claim link for a refund, the checkout otherwise.
  const linkUrl = refund ? refund.claimUrl ?? '' : ctx.checkoutUrl;
  const lines = refund?.amountAtClaim && c.at_claim ? [...c.lines, c.at_claim] : c.lines;
  const plain = (s: string) => s;
  const subject = fill(c.subject, values, plain).replace(/[\r\n]+/g, ' ');
  const textLines = lines.map((l) => fill(l, values, plain));
  if (c.link) textLines.push(linkUrl);
  if (ctx.description && !refund) textLines.push('', ctx.description);
  const text = [...textLines, '', '--', fill(copy.footer, values, plain), ''].join('\n');

  const htmlLines = lines.map((l) => `<p>${fill(l, values, escapeHtml)}</p>`);
  if (c.link) htmlLines.push(`<p><a href="${escapeHtml(linkUrl)}">${escapeHtml(c.link)}</a></p>`);
  if (ctx.description && !refund) htmlLines.push(`<p style="color:#555">${escapeHtml(ctx.description)}</p>`);
  const html = [
    `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head>`,
    '<body style="font-family:system-ui,sans-serif;line-height:1.5;color:#111">',
    `<h2>${escapeHtml(ctx.merchantName)}</h2>`,
    ...htmlLines,
    `<hr><p style="color:#777;font-size:12px">${fill(copy.footer, values, escapeHtml)}</p>`,
    '</body></html>',
  ].join('\n');
  return { subject, text, html };
}
