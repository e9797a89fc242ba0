/**
 * Customer e-mails end to end: events → relay → `emails` rows → `email` queue → nodemailer → a real
 * `smtp-server` on 127.0.0.1 started here. Content and language are checked on the captured mail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { createTestContext, type TestContext } from '../support/db.ts';
import { createPayableMerchant, writeChainsFile } from '../support/merchant.ts';
import { redisConnection } from '../../src/deps.ts';
import { startWorkers, type WorkerRunner } from '../../src/queues/runner.ts';
import { buildWebhookProcessors, type WebhookWorkers } from '../../workers/webhooks.ts';
import { renderEmail, escapeHtml, boundText } from '../../src/email/templates.ts';
import { createEmailService } from '../../src/email/service.ts';
import { chainFeeder, waitFor } from '../webhooks/support.ts';
import { refundServiceFor } from '../../src/refunds/service.ts';
import { writeEvent } from '../../src/invoices/events.ts';
import { createHash } from 'node:crypto';

interface Mail {
  to: string[];
  raw: string;
  subject: string;
  text: string;
  html: string;
  headers: string;
}

/** Minimal MIME decoding for the messages nodemailer builds (multipart/alternative, QP or base64). */
function decodeWords(s: string): string {
  return s.replace(/\r?\n\s+/g, ' ').replace(/=\?UTF-8\?([BQ])\?([^?]*)\?=\s*/gi, (_m, enc: string, data: string) =>
    enc.toUpperCase() === 'B' ? Buffer.from(data, 'base64').toString('utf8') : decodeQP(data.replace(/_/g, ' ')));
}
function decodeQP(s: string): string {
  const bytes: number[] = [];
  const src = s.replace(/=\r?\n/g, '');
  for (let i = 0; i < src.length; i++) {
    if (src[i] === '=' && /^[0-9A-F]{2}$/i.test(src.slice(i + 1, i + 3))) {
      bytes.push(parseInt(src.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(src[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}
function parseMail(raw: string, to: string[]): Mail {
  const [head] = raw.split(/\r?\n\r?\n/);
  const subject = decodeWords(/^Subject: (.*(?:\r?\n[ \t].*)*)/m.exec(head!)![1]!);
  const boundary = /boundary="?([^";\r\n]+)"?/.exec(raw)![1]!;
  const parts = raw.split('--' + boundary).slice(1, -1);
  const part = (type: string) => {
    const p = parts.find((x) => new RegExp(`Content-Type: ${type}`, 'i').test(x))!;
    const [h, ...b] = p.replace(/^\r?\n/, '').split(/\r?\n\r?\n/);
    const body = b.join('\n\n');
    if (/Content-Transfer-Encoding: base64/i.test(h!)) return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    if (/Content-Transfer-Encoding: quoted-printable/i.test(h!)) return decodeQP(body);
    return body;
  };
  return { to, raw, subject, text: part('text/plain').replace(/\r\n/g, '\n'), html: part('text/html'), headers: head! };
}

let ctx: TestContext;
let smtp: SMTPServer;
const mails: Mail[] = [];
let workers: WebhookWorkers;
let runner: WorkerRunner;
let connection: ReturnType<typeof redisConnection>;
let shop: Awaited<ReturnType<typeof createPayableMerchant>>;
let feed: ReturnType<typeof chainFeeder>;

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS', 'AUTH'], logger: false,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push(parseMail(Buffer.concat(chunks).toString('utf8'), session.envelope.rcptTo.map((r) => r.address)));
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
  const port = (smtp.server.address() as AddressInfo).port;
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile(), SMTP_URL: `smtp://127.0.0.1:${port}`, SMTP_FROM: 'Shop payments <pay@shop.test>' });
  shop = await createPayableMerchant(ctx.deps, { name: 'Tea & <Cakes>' });
  feed = chainFeeder(ctx);
  await feed.mineBlock('bitcoin', []);
  connection = redisConnection(ctx.config.redisUrl);
  workers = buildWebhookProcessors(ctx.deps, { relayEveryMs: 150, watchdogMs: 500 });
  runner = startWorkers({ connection, prefix: ctx.config.queuePrefix, logger: ctx.deps.logger, processors: workers.processors });
  await workers.start();
}, 60_000);

afterAll(async () => {
  await workers?.stop();
  await runner?.close();
  connection?.disconnect();
  await ctx?.close();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
});

async function createInvoice(body: Record<string, unknown>) {
  const merchant = await ctx.deps.merchants.get(ctx.deps.sql, shop.merchant.id);
  return ctx.deps.invoices.create(merchant, { amount: '30.00', currency: 'USD', ...body } as never);
}
type Inv = Awaited<ReturnType<typeof createInvoice>>;
const btc = (inv: Inv, sats: bigint) => ({
  txid: feed.newTxid(), outputIndex: 0, address: inv.payment_methods.find((m) => m.method === 'BTC')!.address, token: null, amount: sats,
});
const mailsTo = (addr: string) => mails.filter((m) => m.to.includes(addr));

describe('customer e-mails', () => {
  it('partial payment (zh-CN): remaining amount and checkout link in Simplified Chinese; then detected and paid', async () => {
    const firstMail = mails.length;
    const inv = await createInvoice({ buyer_email: 'li@example.com', locale: 'zh-CN', order_id: 'A-<1>' });
    await feed.mineBlock('bitcoin', [btc(inv, 25_000n)]); // 15.00 of 30.00
    // Only mails received during this attempt (a retried run must not read the first attempt's).
    const mine = () => mails.slice(firstMail).filter((m) => m.to.includes('li@example.com'));
    const partial = await waitFor('partial mail', () => mine()[0]);
    expect(partial.subject).toBe('已收到部分付款：仍需支付 15.00 USD');
    expect(partial.text).toContain('剩余金额为 15.00 USD');
    expect(partial.text).toContain(inv.checkout_url);
    expect(partial.text).toContain('订单 A-<1>');
    expect(partial.html).toContain(`<a href="${inv.checkout_url}">完成付款</a>`);
    expect(partial.html).toContain('订单 A-&lt;1&gt;');
    expect(partial.html).toContain('Tea &amp; &lt;Cakes&gt;');
    expect(partial.html).not.toContain('<Cakes>');
    expect(partial.headers).toContain('pay@shop.test');

    await feed.mineBlock('bitcoin', [btc(inv, 25_000n)]);
    const all = await waitFor('paid mail', () => {
      const m = mine();
      return m.some((x) => x.subject.startsWith('付款已完成')) && m;
    });
    const paid = all.find((x) => x.subject.startsWith('付款已完成'))!;
    expect(paid.subject).toBe('付款已完成：Tea & <Cakes>');
    expect(paid.text).toContain('30.00 USD');
    // The SMTP server has a mail before the sender records it as sent: wait for the rows.
    const sent = async () => (await ctx.deps.sql<{ n: number }[]>`select count(*)::int as n from emails where invoice_id = ${inv.id} and status = 'sent'`)[0]!.n;
    await waitFor('every mail recorded as sent', async () => (await sent()) >= all.length, 10_000).catch(() => {});
    expect(await sent()).toBe(all.length);
  });

  it('English by default: payment detected, then paid', async () => {
    const inv = await createInvoice({ buyer_email: 'ann@example.com' });
    const pay = btc(inv, 50_000n);
    await feed.seeInMempool('bitcoin', [pay]);
    const detected = await waitFor('detected', () => mailsTo('ann@example.com')[0]);
    expect(detected.subject).toBe('Payment received for your order at Tea & <Cakes>');
    expect(detected.text).toContain(`We have detected your payment of 30.00 USD for Invoice ${inv.id}.`);
    await feed.mineBlock('bitcoin', [pay]);
    const paid = await waitFor('paid', () => mailsTo('ann@example.com').find((m) => m.subject.startsWith('Payment complete')));
    expect(paid.text).toContain('is confirmed');
    expect(paid.html).toContain('<html lang="en">');
  });

  it('expired after a partial payment, and a late payment after expiry', async () => {
    const inv = await createInvoice({ buyer_email: 'bob@example.com', locale: 'en' });
    await feed.mineBlock('bitcoin', [btc(inv, 25_000n)]); // the customer acted: 15.00 of 30.00
    await waitFor('partial', () => mailsTo('bob@example.com').find((m) => m.subject.startsWith('Partial payment')));
    await ctx.deps.sql`update invoices set expires_at = now() - interval '1 minute' where id = ${inv.id}`;
    await ctx.deps.invoices.get(shop.merchant.id, inv.id);
    const expired = await waitFor('expired', () => mailsTo('bob@example.com').find((m) => m.subject.startsWith('Invoice expired')));
    expect(expired.subject).toBe('Invoice expired: Tea & <Cakes>');
    expect(expired.text).toContain('expired before it was paid in full');
    await feed.mineBlock('bitcoin', [btc(inv, 50_000n)]);
    const late = await waitFor('late', () => mailsTo('bob@example.com').find((m) => m.subject.startsWith('Late payment')));
    expect(late.text).toContain('after the invoice had expired');
  });

  it('no e-mail before the customer acted: an unpaid invoice that expires or is marked settled never mails its buyer_email', async () => {
    const expiring = await createInvoice({ buyer_email: 'victim@example.com', description: 'Buy cheap pills at spam.example '.repeat(32) });
    await ctx.deps.sql`update invoices set expires_at = now() - interval '1 minute' where id = ${expiring.id}`;
    await ctx.deps.invoices.get(shop.merchant.id, expiring.id);
    const cancelled = await createInvoice({ buyer_email: 'victim@example.com' });
    await ctx.deps.invoices.mark(shop.merchant.id, cancelled.id, 'settled', 'user:test', 'paid by card in the shop');
    for (const inv of [expiring, cancelled]) {
      await waitFor('relayed', async () => {
        const ev = await ctx.deps.sql<{ relayed: boolean }[]>`select relayed_at is not null as relayed from events where invoice_id = ${inv.id}`;
        return ev.length >= 2 && ev.every((e) => e.relayed);
      });
    }
    const rows = await ctx.deps.sql`select 1 from emails where to_address = 'victim@example.com'`;
    expect(rows.length).toBe(0);
    expect(mailsTo('victim@example.com')).toEqual([]);
  });

  it('merchant text is bounded: a 1,000-character description reaches the mail cut to 200 characters, escaped', async () => {
    const long = '<b>x</b>' + 'd'.repeat(992);
    const inv = await createInvoice({ buyer_email: 'long@example.com', description: long });
    await feed.mineBlock('bitcoin', [btc(inv, 50_000n)]);
    const mail = await waitFor('mail', () => mailsTo('long@example.com')[0]);
    const shown = '<b>x</b>' + 'd'.repeat(191) + '…';
    expect(mail.text).toContain(shown);
    expect(mail.text).not.toContain('d'.repeat(192));
    expect(mail.html).toContain(escapeHtml(shown));
    expect(mail.html).not.toContain('<b>x</b>');
  });

  it('a merchant can cause at most EMAILS_PER_MERCHANT_PER_HOUR customer e-mails per hour', async () => {
    const other = await createPayableMerchant(ctx.deps, { name: 'Bulk mailer', seedByte: 11 });
    const merchant = await ctx.deps.merchants.get(ctx.deps.sql, other.merchant.id);
    const before = ctx.config.emailsPerMerchantPerHour;
    ctx.config.emailsPerMerchantPerHour = 2;
    try {
      const invs = [];
      for (let i = 0; i < 4; i++) invs.push(await ctx.deps.invoices.create(merchant, { amount: '30.00', currency: 'USD', buyer_email: `bulk${i}@example.com` } as never));
      await feed.mineBlock('bitcoin', invs.map((inv) => btc(inv, 50_000n)));
      for (const inv of invs) {
        await waitFor('relayed', async () => (await ctx.deps.sql`select 1 from events where invoice_id = ${inv.id} and relayed_at is null`).length === 0);
      }
      const [n] = await ctx.deps.sql<{ n: number }[]>`select count(*)::int as n from emails where merchant_id = ${other.merchant.id}`;
      expect(n!.n).toBe(2);
      expect(ctx.logs.text()).toContain('merchant hourly limit reached');
    } finally {
      ctx.config.emailsPerMerchantPerHour = before;
    }
  });

  it('no buyer_email, no e-mail; never the address or content in logs', async () => {
    const inv = await createInvoice({});
    await feed.mineBlock('bitcoin', [btc(inv, 50_000n)]);
    await waitFor('relayed', async () => (await ctx.deps.sql`select 1 from events where invoice_id = ${inv.id} and type = 'invoice.settled' and relayed_at is not null`).length > 0);
    const [n] = await ctx.deps.sql`select count(*)::int as n from emails where invoice_id = ${inv.id}`;
    expect(n!.n).toBe(0);
    expect(ctx.logs.text()).not.toContain('li@example.com');
  });

  it('e-mails are off when SMTP_URL is unset', async () => {
    const off = createEmailService({ sql: ctx.deps.sql, config: ctx.config, logger: ctx.deps.logger, queues: ctx.deps.queues, sender: null });
    expect(off.enabled).toBe(false);
    const [e] = await ctx.deps.sql<any[]>`select id, merchant_id, type, invoice_id, payload from events where type = 'invoice.settled' limit 1`;
    expect(await off.createForEvent(ctx.deps.sql, e)).toEqual([]);
  });
});

describe('refund e-mails', () => {
  const REGTEST_ADDRESS = 'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080';
  const refunds = () => refundServiceFor(ctx.deps);

  it('the claim link is e-mailed (zh-CN) when the invoice has a buyer e-mail; then one completion e-mail, not again after a reorg', async () => {
    const inv = await createInvoice({ buyer_email: 'mei@example.com', locale: 'zh-CN', order_id: 'R-<7>' });
    await feed.mineBlock('bitcoin', [btc(inv, 60_000n)]); // 36.00 USD for a 30.00 price: overpaid
    await waitFor('paid mail', () => mailsTo('mei@example.com').find((m) => m.subject.startsWith('付款已完成')));
    const refund = await refunds().create(shop.merchant.id, inv.id, { amount: 'overpaid', reason: 'price match' });
    expect(refund.claim_url).toMatch(/\/refund\/[0-9A-Za-z]{32}$/);
    // This refund's mail (a retried run must not read the first attempt's).
    const claim = await waitFor('claim mail', () => mailsTo('mei@example.com').find((m) => m.text.includes(refund.claim_url!)));
    expect(claim.subject).toBe(`Tea & <Cakes> 向您退款：${refund.amount.replace(/0+$/, '')} BTC`);
    expect(claim.text).toContain(refund.claim_url!);
    expect(claim.text).toContain('订单 R-<7>');
    expect(claim.text).toContain('不要输入交易所充值地址');
    expect(claim.html).toContain(`<a href="${refund.claim_url}">领取退款</a>`);
    expect(claim.html).toContain('Tea &amp; &lt;Cakes&gt;');
    expect(claim.html).toContain('订单 R-&lt;7&gt;');
    expect(claim.html).not.toContain('<Cakes>');

    // The tracker's move to completed (the chain side is test/refunds/*): the refund as it then stands, its event.
    const txid = createHash('sha256').update(refund.id).digest('hex');
    const complete = async (type: 'refund.completed' | 'refund.reorged') => {
      await ctx.deps.sql`update refunds set status = ${type === 'refund.completed' ? 'completed' : 'broadcast'}, destination = ${REGTEST_ADDRESS}, claimed_at = now(),
                 approved_at = now(), txid = ${txid}, raw_tx = '00', broadcast_at = now(), completed_at = ${type === 'refund.completed' ? new Date() : null} where id = ${refund.id}`;
      const object = await refunds().get(shop.merchant.id, refund.id);
      await writeEvent(ctx.deps.sql, { merchantId: shop.merchant.id, type, invoiceId: inv.id, object });
    };
    await complete('refund.completed');
    const firstDone = mails.length;
    const done = await waitFor('completed mail', () => mails.slice(firstDone).find((m) => m.to.includes('mei@example.com') && m.subject.startsWith('退款已发出')));
    expect(done.subject).toBe(`退款已发出：Tea & <Cakes> 退还 ${refund.amount.replace(/0+$/, '')} BTC`);
    expect(done.text).toContain(`已发送到 ${REGTEST_ADDRESS}`);
    expect(done.text).toContain(`交易：${txid}`);
    expect(done.text).not.toContain(refund.claim_url!);
    // A reorg and a second completion: the customer is not told twice.
    await complete('refund.reorged');
    await complete('refund.completed');
    await waitFor('relayed', async () => (await ctx.deps.sql`select 1 from events where invoice_id = ${inv.id} and relayed_at is null`).length === 0);
    const rows = await ctx.deps.sql<{ kind: string }[]>`select kind from emails where invoice_id = ${inv.id} and kind like 'refund%' order by created_at`;
    expect(rows.map((r) => r.kind)).toEqual(['refund_claim', 'refund_completed']);
  });

  it('English, with the amount set at the claim (current rate); no buyer e-mail, no refund e-mail', async () => {
    const inv = await createInvoice({ buyer_email: 'sam@example.com' });
    await feed.mineBlock('bitcoin', [btc(inv, 50_000n)]);
    await waitFor('paid mail', () => mailsTo('sam@example.com').find((m) => m.subject.startsWith('Payment complete')));
    const r = await refunds().create(shop.merchant.id, inv.id, { amount: '10.00', rate_basis: 'current' });
    const claim = await waitFor('claim mail', () => mailsTo('sam@example.com').find((m) => m.text.includes(r.claim_url!)));
    expect(claim.subject).toBe(`Your refund from Tea & <Cakes>: ${r.amount.replace(/0+$/, '')} BTC`);
    expect(claim.text).toContain(`Tea & <Cakes> is refunding ${r.amount.replace(/0+$/, '')} BTC for Invoice ${inv.id}.`);
    expect(claim.text).toContain('converted at the exchange rate of the moment you enter your address');
    expect(claim.text).toContain(r.claim_url!);

    const quiet = await createInvoice({});
    await feed.mineBlock('bitcoin', [btc(quiet, 50_000n)]);
    await refunds().create(shop.merchant.id, quiet.id, { amount: 'full' });
    await waitFor('relayed', async () => (await ctx.deps.sql`select 1 from events where invoice_id = ${quiet.id} and relayed_at is null`).length === 0);
    expect((await ctx.deps.sql`select 1 from emails where invoice_id = ${quiet.id}`).length).toBe(0);
  });
});

describe('templates', () => {
  const base = {
    merchantName: '<b>Evil</b> & Co', invoiceId: 'inv_1', orderId: '"><script>x</script>', description: '<img src=x onerror=alert(1)>',
    amount: '30.00', currency: 'USD', amountPaid: '10.00', amountDue: '20.00', checkoutUrl: 'https://pay.example/pay/inv_1?a=1&b="2"',
  };
  it('escape everything from the merchant and invoice in HTML', () => {
    const refund = { amount: '0.0001', asset: 'BTC', amountAtClaim: false, claimUrl: 'https://pay.example/refund/abc?x=<1>', destination: '"><b>dest', txid: '<i>tx' };
    for (const kind of ['payment_detected', 'paid', 'partial_payment', 'expired', 'late_payment', 'refund_claim', 'refund_completed'] as const) {
      for (const locale of ['en', 'zh-CN']) {
        const r = renderEmail(kind, locale, kind.startsWith('refund') ? { ...base, refund } : base);
        expect(r.html).not.toMatch(/<i>tx|<b>dest|x=<1>/);
        expect(r.html).not.toMatch(/<script>|<img|<b>Evil/);
        expect(r.html).toContain(escapeHtml(base.merchantName));
        expect(r.text).toContain(base.merchantName);
        expect(r.subject).not.toMatch(/[\r\n]/);
      }
    }
    expect(renderEmail('partial_payment', 'en', base).html).toContain('href="https://pay.example/pay/inv_1?a=1&amp;b=&quot;2&quot;"');
  });
  it('bound merchant text: control and bidi characters removed, at most 100/100/200 characters', () => {
    expect(boundText('a\u0000b\u202ec\r\nd', 100)).toBe('abc d');
    const r = renderEmail('paid', 'en', { ...base, merchantName: 'M'.repeat(500), orderId: 'O'.repeat(500), description: 'D'.repeat(1000) });
    expect(r.subject).toBe(`Payment complete: ${'M'.repeat(99)}…`);
    expect(r.text).toContain(`Order ${'O'.repeat(99)}…`);
    expect(r.text).toContain(`${'D'.repeat(199)}…`);
    expect(r.text).not.toContain('D'.repeat(200));
  });
  it('falls back to English for unknown locales', () => {
    expect(renderEmail('paid', 'fr', base).subject).toBe(renderEmail('paid', 'en', base).subject);
  });
});
