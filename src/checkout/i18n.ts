/**
 * Checkout page texts in English and Simplified Chinese. Templates use `{name}` placeholders,
 * filled by `fmt` on the server and by the same rule in the page script (which receives the
 * chosen locale's messages), so both render identical strings.
 */

export const LOCALES = ['en', 'zh-CN'] as const;
export type Locale = (typeof LOCALES)[number];

const en = {
  html_title: 'Pay {merchant}',
  price: 'Price',
  pay_with: 'Pay with',
  amount: 'Amount',
  address: 'Address',
  network: 'Network',
  copy: 'Copy',
  copy_amount: 'Copy amount',
  copy_address: 'Copy address',
  copied: 'Copied to the clipboard.',
  copy_failed: 'Could not copy; select the text and copy it by hand.',
  open_wallet: 'Open in wallet',
  qr_alt: 'QR code of the wallet payment link for {amount} {asset}',
  scan_hint: 'Scan with your wallet app, or copy the amount and address.',
  expires_in: 'Time left to pay:',
  expired_clock: 'expired',
  send_only: 'Send only {asset} on {network}. Funds sent in another asset or on another network are lost.',
  bitcoin: 'Bitcoin',
  network_bitcoin: 'Bitcoin · {network}',
  on_networks: 'on {networks}',
  list_separator: ', ',
  status_waiting: 'Waiting for your payment',
  status_waiting_detail: 'Send exactly the amount shown to the address below. This page updates by itself when the payment arrives.',
  status_partial: 'Partial payment received',
  status_partial_detail: 'Received {paid} {currency}. Still due: {due} {currency}. Send the rest to the same address; the amount and QR code below are for the remaining amount.',
  status_detected: 'Payment detected',
  status_detected_detail: 'Waiting for confirmations: {n} of {m}. You can close this page; the payment is recorded.',
  status_paid: 'Paid. Thank you!',
  status_paid_detail: 'Your payment of {paid} {currency} is confirmed.',
  note_overpaid: 'You sent more than the price ({paid} {currency} received for {amount} {currency}). Contact {merchant} about the difference.',
  note_late: 'Your payment was first seen on the network after this invoice expired, so it does not count toward this order. A payment is on time only if it was seen waiting for confirmation or in a block before the expiry time, as recorded by the shop\'s payment system (not the time a miner wrote in the block). It is recorded and not lost: contact {merchant} to complete the order or arrange a refund.',
  status_expired: 'This invoice has expired',
  status_expired_detail: 'Do not send a payment to this address now. If you already paid, contact {merchant}: payments still arriving are recorded and not lost. To buy, start a new checkout at the shop.',
  note_expired_partial: 'Received before expiry: {paid} {currency} of {amount} {currency}.',
  status_invalid: 'This invoice is invalid',
  status_invalid_detail: 'The payment could not be completed: a payment was reversed or replaced, did not confirm in time, or the merchant cancelled the invoice. Do not send more. Contact {merchant} for help.',
  redirecting: 'Taking you back to {merchant} in a few seconds…',
  return_link: 'Return to {merchant}',
  payments: 'Payments received',
  payment_pending: '{amount} {asset}: {n} of {m} confirmations',
  payment_confirmed: '{amount} {asset}: confirmed',
  language: 'Language',
  refresh: 'Refresh the status',
  live_paused: 'Live updates interrupted; checking every few seconds.',
  not_found_title: 'Payment page not found',
  not_found_detail: 'This payment link is wrong or the invoice does not exist. Check the link the shop gave you, or contact the shop.',
  rate_limited_title: 'Too many requests',
  rate_limited_detail: 'Please wait a minute, then reload this page.',
  method_changed: 'Now paying with {asset} on {network}: the amount ({amount} {asset}) and the address changed.',
  transaction: 'Transaction',
  pay_with_wallet: 'Pay with {wallet}',
  browser_wallet: 'your browser wallet',
  wallet_connecting: 'Connecting to {wallet}…',
  wallet_switching: 'Switch {wallet} to {network} when it asks.',
  wallet_confirm: 'Confirm the payment of {amount} {asset} in {wallet}.',
  wallet_sent: 'Sent from your wallet. This page updates when the network sees it. Transaction:',
  wallet_rejected: 'You cancelled in your wallet. Nothing was sent.',
  wallet_wrong_chain: 'Your wallet is on another network. Switch it to {network}, then try again.',
  wallet_insufficient: 'This wallet account does not have enough to pay {amount} {asset} plus the network fee on {network}.',
  wallet_gone: '{wallet} is no longer available: it was closed, disabled or removed. If you already confirmed the payment there, this page shows it once the network sees it. Otherwise pay by copying the amount and address, or with the QR code.',
  wallet_busy: 'Your wallet already has a request open. Finish or close it, then try again.',
  wallet_failed: 'The wallet could not send the payment: {message}',
  view_transaction: 'View transaction {txid} on a block explorer',
} as const;

export type MessageKey = keyof typeof en;
export type Messages = Record<MessageKey, string>;

const zhCN: Messages = {
  html_title: '向 {merchant} 付款',
  price: '价格',
  pay_with: '支付方式',
  amount: '金额',
  address: '地址',
  network: '网络',
  copy: '复制',
  copy_amount: '复制金额',
  copy_address: '复制地址',
  copied: '已复制到剪贴板。',
  copy_failed: '无法复制，请手动选择文本并复制。',
  open_wallet: '在钱包中打开',
  qr_alt: '支付 {amount} {asset} 的钱包付款链接二维码',
  scan_hint: '用钱包应用扫描二维码，或复制金额和地址。',
  expires_in: '剩余付款时间：',
  expired_clock: '已过期',
  send_only: '只能通过 {network} 发送 {asset}。发送其他资产或使用其他网络的资金将会丢失。',
  bitcoin: '比特币',
  network_bitcoin: '比特币 · {network}',
  on_networks: '可用网络：{networks}',
  list_separator: '、',
  status_waiting: '等待付款',
  status_waiting_detail: '请向下方地址发送所示的准确金额。收到付款后本页面会自动更新。',
  status_partial: '已收到部分付款',
  status_partial_detail: '已收到 {paid} {currency}，仍需支付 {due} {currency}。请将余额发送到同一地址；下方金额和二维码为剩余金额。',
  status_detected: '已检测到付款',
  status_detected_detail: '等待区块确认：{n} / {m}。您可以关闭本页面，付款已被记录。',
  status_paid: '付款成功，谢谢！',
  status_paid_detail: '您支付的 {paid} {currency} 已确认。',
  note_overpaid: '您支付的金额超过了价格（应付 {amount} {currency}，实收 {paid} {currency}）。请联系 {merchant} 处理差额。',
  note_late: '您的付款在此账单过期后才首次出现在网络上，因此不计入此订单。只有在过期时间之前已被商店的支付系统记录到（在等待确认中或已在区块中）的付款才算按时（以支付系统的记录为准，而不是矿工写入区块的时间）。该付款已被记录，不会丢失：请联系 {merchant} 完成订单或安排退款。',
  status_expired: '此账单已过期',
  status_expired_detail: '请不要再向此地址付款。如果您已付款，请联系 {merchant}：仍在到账的付款会被记录，不会丢失。如需购买，请在商店重新发起结账。',
  note_expired_partial: '过期前已收到：{paid} {currency}（共 {amount} {currency}）。',
  status_invalid: '此账单无效',
  status_invalid_detail: '付款未能完成：某笔付款被撤销或替换、未能及时确认，或商家已取消此账单。请不要再付款，并联系 {merchant} 获取帮助。',
  redirecting: '几秒后将返回 {merchant}…',
  return_link: '返回 {merchant}',
  payments: '已收到的付款',
  payment_pending: '{amount} {asset}：已确认 {n} / {m}',
  payment_confirmed: '{amount} {asset}：已确认',
  language: '语言',
  refresh: '刷新状态',
  live_paused: '实时更新中断，每隔几秒自动检查。',
  not_found_title: '找不到付款页面',
  not_found_detail: '此付款链接有误或账单不存在。请检查商店提供的链接，或联系商店。',
  rate_limited_title: '请求过多',
  rate_limited_detail: '请稍等一分钟，然后重新加载本页面。',
  method_changed: '已改为通过 {network} 支付 {asset}：金额（{amount} {asset}）和地址已更新。',
  transaction: '交易',
  pay_with_wallet: '使用 {wallet} 支付',
  browser_wallet: '浏览器钱包',
  wallet_connecting: '正在连接 {wallet}…',
  wallet_switching: '请在 {wallet} 提示时切换到 {network}。',
  wallet_confirm: '请在 {wallet} 中确认支付 {amount} {asset}。',
  wallet_sent: '已从您的钱包发送。网络收到后本页面会自动更新。交易：',
  wallet_rejected: '您在钱包中取消了操作，没有发送任何资金。',
  wallet_wrong_chain: '您的钱包在其他网络上。请切换到 {network} 后重试。',
  wallet_insufficient: '此钱包账户的余额不足以支付 {amount} {asset} 及 {network} 上的网络手续费。',
  wallet_gone: '{wallet} 已不可用：它已被关闭、停用或移除。如果您已在其中确认付款，网络收到后本页面会显示。否则请复制金额和地址付款，或扫描二维码付款。',
  wallet_busy: '您的钱包已有一个未完成的请求。请先完成或关闭它，然后重试。',
  wallet_failed: '钱包无法发送付款：{message}',
  view_transaction: '在区块浏览器中查看交易 {txid}',
};

export const MESSAGES: Record<Locale, Messages> = { en, 'zh-CN': zhCN };

/** The language names shown in the switcher, each in its own language. */
export const LOCALE_NAMES: Record<Locale, string> = { en: 'English', 'zh-CN': '简体中文' };

/** Fills `{name}` placeholders; unknown names stay as they are. */
export function fmt(template: string, vars: Record<string, string | number> = {}): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole));
}

/** `en`, `zh-CN` (also `zh`, `zh-Hans`, `zh_CN`, any case) → a supported locale, else undefined. */
export function normalizeLocale(raw: string | undefined | null): Locale | undefined {
  if (!raw) return undefined;
  const v = raw.trim().toLowerCase().replace('_', '-');
  if (v === 'en' || v.startsWith('en-')) return 'en';
  if (v === 'zh' || v === 'zh-cn' || v === 'zh-hans' || v.startsWith('zh-hans-') || v === 'zh-sg') return 'zh-CN';
  return undefined;
}

/** Best supported locale from an Accept-Language header (by q value, then order). */
export function fromAcceptLanguage(header: string | undefined | null): Locale | undefined {
  if (!header) return undefined;
  const ranked = header
    .split(',')
    .map((part, i) => {
      const [tag, ...params] = part.trim().split(';');
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return { tag: tag ?? '', q: q ? Number(q.slice(2)) || 0 : 1, i };
    })
    .filter((x) => x.tag && x.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const r of ranked) {
    const l = normalizeLocale(r.tag);
    if (l) return l;
  }
  return undefined;
}

/**
 * The page language: an explicit `?lang=` wins; then an invoice created with a non-default locale;
 * then the browser's Accept-Language; then the invoice locale (English by default).
 */
export function pickLocale(opts: { query?: string | undefined; invoiceLocale?: string | undefined; acceptLanguage?: string | undefined }): Locale {
  const q = normalizeLocale(opts.query);
  if (q) return q;
  const inv = normalizeLocale(opts.invoiceLocale);
  if (inv && inv !== 'en') return inv;
  return fromAcceptLanguage(opts.acceptLanguage) ?? inv ?? 'en';
}
