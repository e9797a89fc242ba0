/**
 * `kassa sandbox scenario <name>`: end-to-end runs against the running sandbox. Each creates an
 * invoice through the API with the demo key, pays / mines / reorgs, waits for the invoice to move,
 * and reports its path through its states (from the invoice's events in the event log: the
 * `invoice.created`, `invoice.processing`, `invoice.settled`, `invoice.expired`, `invoice.invalid`
 * rows), the exceptions seen on the way, and the webhooks the built-in receiver verified.
 *
 * The result is `ok` only when the path (and the expected exception) match.
 *
 * `overpaid-refund` (pays 20% too much, refunds `"overpaid"`) and `partial-refund` (pays in full,
 * refunds 10.00 of the 25.00 USD) then run a refund the whole way (src/sandbox/refund.ts): create,
 * the customer's claim, approve, signed by the sandbox's copy of the demo merchant's keys, one block,
 * and the worker's tracker completes it; the refund's path (from its events) must be
 * awaiting_destination → awaiting_approval → awaiting_signature → broadcast → completed.
 *
 * `reorg` works on both chains, with the same expected path (new → processing → settled →
 * invalid): on Bitcoin (the default, `--method BTC`) it invalidates the payment's block and
 * double-spends the payment before mining a longer chain; on the EVM chain (`--method
 * ETH-ethereum|USDC-ethereum|USDT-ethereum`) it reverts hardhat to the snapshot `pay` took before
 * paying and mines a longer branch without the payment (hardhat drops the transaction).
 *
 * SANDBOX-ONLY SHORTCUT: `expired` and `late` move the invoice's `expires_at` to now directly in
 * the database instead of waiting the API's 60 s minimum `expires_in`. Nothing else in Kassa does
 * this; it only exists so the scenarios take seconds.
 */
import { readFileSync, existsSync } from 'node:fs';
import { createSql } from '../db/client.ts';
import { KassaError } from '../errors.ts';
import { sandboxPaths } from '../cli/sandbox-runtime.ts';
import { evmTip, mine, pay, reorg, type Invoice, type SandboxChain, type SandboxContext } from './actions.ts';
import type { WebhookLogEntry } from './receiver.ts';
import type { InvoiceException, InvoiceStatus } from '../invoices/status.ts';
import { REFUND_EXPECTED_PATH, REFUND_STATE_OF, refundAsMerchant, type RefundRun } from './refund.ts';

export const SCENARIOS = ['paid', 'partial-then-topup', 'overpaid', 'expired', 'late', 'reorg', 'overpaid-refund', 'partial-refund'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface ScenarioResult {
  scenario: ScenarioName;
  invoice: string;
  method: string;
  path: string[];
  expected_path: string[];
  exception: string | null;
  expected_exception: string | null;
  /** Exceptions observed while the scenario ran (e.g. paid_partial before the top-up). */
  observed_exceptions: string[];
  /** Webhook event types the receiver verified for this invoice, in arrival order. */
  webhooks: string[];
  webhooks_note: string | null;
  steps: string[];
  /** The refund scenarios: the refund and its path through its states (from its events). */
  refund: (RefundRun & { status: string; path: string[]; expected_path: string[] }) | null;
  ok: boolean;
}

const STATE_OF: Record<string, InvoiceStatus> = {
  'invoice.created': 'new',
  'invoice.processing': 'processing',
  'invoice.settled': 'settled',
  'invoice.expired': 'expired',
  'invoice.invalid': 'invalid',
};

interface Expectation {
  path: InvoiceStatus[];
  exception: InvoiceException | null;
  observed?: InvoiceException[];
}

const EXPECT: Record<ScenarioName, Expectation> = {
  paid: { path: ['new', 'processing', 'settled'], exception: null },
  'partial-then-topup': { path: ['new', 'processing', 'settled'], exception: null, observed: ['paid_partial'] },
  overpaid: { path: ['new', 'processing', 'settled'], exception: 'paid_over' },
  expired: { path: ['new', 'expired'], exception: null },
  late: { path: ['new', 'expired'], exception: 'paid_late' },
  reorg: { path: ['new', 'processing', 'settled', 'invalid'], exception: null },
  'overpaid-refund': { path: ['new', 'processing', 'settled'], exception: 'paid_over' },
  'partial-refund': { path: ['new', 'processing', 'settled'], exception: null },
};

export function isScenario(name: string): name is ScenarioName {
  return (SCENARIOS as readonly string[]).includes(name);
}

export async function runScenario(
  ctx: SandboxContext,
  dataDir: string,
  name: ScenarioName,
  opts: { method?: string; timeoutMs?: number; log?: (line: string) => void } = {},
): Promise<ScenarioResult> {
  const method = opts.method ?? 'BTC';
  const chain: SandboxChain = method === 'BTC' ? 'bitcoin' : 'ethereum';
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const steps: string[] = [];
  const step = (s: string) => {
    steps.push(s);
    opts.log?.(s);
  };
  const observed = new Set<string>();
  const sql = createSql(ctx.runtime.database_url, { max: 1 });

  const get = () => ctx.api<Invoice>('GET', `/v1/invoices/${invoice.id}`);
  const waitUntil = async (what: string, pred: (inv: Invoice) => boolean): Promise<Invoice> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const inv = await get();
      if (inv.exception) observed.add(inv.exception);
      if (pred(inv)) {
        step(`  … ${what}: status ${inv.status}${inv.exception ? ` (${inv.exception})` : ''}, paid ${inv.amount_paid} of ${inv.amount} ${inv.currency}`);
        return inv;
      }
      if (Date.now() > deadline) throw new KassaError('sandbox_timeout', `timed out waiting for ${what} (invoice ${inv.id} is ${inv.status}${inv.exception ? `/${inv.exception}` : ''})`, { retryable: false });
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const payStep = async (o: Parameters<typeof pay>[2]) => {
    const r = await pay(ctx, invoice.id, { method, ...o });
    step(`pay ${r.amount} ${r.asset} to ${r.address} (tx ${r.txid})`);
    return r;
  };
  const mineStep = async (n = 1) => {
    const r = await mine(ctx, chain, n);
    step(`mine ${n} ${chain} block(s) → tip ${r.tip}`);
    return r;
  };
  /** SANDBOX-ONLY SHORTCUT: expire now instead of waiting the 60 s minimum. */
  const expireNow = async () => {
    await sql`update invoices set expires_at = now() where id = ${invoice.id} and status = 'new'`;
    step('expire the invoice now (sandbox-only shortcut: expires_at set in the database)');
  };

  let invoice: Invoice;
  let refund: RefundRun | null = null;
  /** Refund, then one block, then wait for the worker's track-refunds job to complete it. */
  const refundStep = async (body: Record<string, unknown>) => {
    refund = await refundAsMerchant(ctx, invoice.id, method, body, step);
    await mineStep();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await ctx.api<{ status: string }>('GET', `/v1/refunds/${refund.id}`);
      if (r.status === 'completed' || r.status === 'failed') {
        step(`  … refund ${r.status}: ${refund.amount} ${refund.asset} to ${refund.destination} (tx ${refund.txid})`);
        break;
      }
      if (Date.now() > deadline) throw new KassaError('sandbox_timeout', `timed out waiting for refund ${refund.id} to complete (it is ${r.status}; is the worker running?)`, { retryable: false });
      await new Promise((res) => setTimeout(res, 500));
    }
  };
  try {
    invoice = await ctx.api<Invoice>('POST', '/v1/invoices', {
      amount: '25.00', currency: 'USD', payment_methods: [method], speed_policy: 'medium',
      order_id: `scenario-${name}-${Date.now()}`, description: `sandbox scenario ${name}`,
      ...(name === 'expired' || name === 'late' ? { expires_in: 60 } : {}),
    });
    step(`create invoice ${invoice.id}: 25.00 USD, pay with ${method}`);

    switch (name) {
      case 'paid':
        await payStep({});
        await waitUntil('payment detected', (i) => i.status !== 'new');
        await mineStep();
        await waitUntil('settled', (i) => i.status === 'settled');
        break;
      case 'partial-then-topup':
        await payStep({ partial: '50' });
        await waitUntil('partial payment seen', (i) => i.exception === 'paid_partial');
        await mineStep();
        await payStep({});
        await waitUntil('top-up detected', (i) => i.status !== 'new');
        await mineStep();
        await waitUntil('settled', (i) => i.status === 'settled');
        break;
      case 'overpaid-refund':
        await payStep({ over: '20' });
        await waitUntil('payment detected', (i) => i.status !== 'new');
        await mineStep();
        await waitUntil('settled', (i) => i.status === 'settled');
        await refundStep({ amount: 'overpaid', reason: 'sandbox scenario: the customer paid 20% too much' });
        break;
      case 'partial-refund':
        await payStep({});
        await waitUntil('payment detected', (i) => i.status !== 'new');
        await mineStep();
        await waitUntil('settled', (i) => i.status === 'settled');
        await refundStep({ amount: '10.00', reason: 'sandbox scenario: one item of the order returned' });
        break;
      case 'overpaid':
        await payStep({ over: '20' });
        await waitUntil('payment detected', (i) => i.status !== 'new');
        await mineStep();
        await waitUntil('settled', (i) => i.status === 'settled');
        break;
      case 'expired':
        await expireNow();
        await waitUntil('expired', (i) => i.status === 'expired');
        break;
      case 'late':
        await expireNow();
        await waitUntil('expired', (i) => i.status === 'expired');
        await payStep({});
        await mineStep();
        await waitUntil('late payment recorded', (i) => i.exception === 'paid_late');
        break;
      case 'reorg': {
        const p = await payStep({});
        await waitUntil('payment detected', (i) => i.status !== 'new');
        await mineStep();
        await waitUntil('settled', (i) => i.status === 'settled');
        if (chain === 'bitcoin') {
          const r = await reorg(ctx, 'bitcoin', 1, { doubleSpend: [p.txid] });
          step(`reorg bitcoin depth 1: block ${r.old_tip.height} ${r.old_tip.hash.slice(0, 16)}… replaced, payment double-spent by ${r.replaced[0]?.replacement ?? '?'}, new tip ${r.new_tip.height}`);
        } else {
          // Drop the payment's block and everything after it (pay snapshotted the chain before it).
          if (p.block === undefined) throw new KassaError('sandbox_scenario_failed', `no block for payment ${p.txid}`, { retryable: false });
          const r = await reorg(ctx, 'ethereum', (await evmTip(ctx)) - p.block + 1);
          step(`reorg ethereum depth ${r.depth}: blocks ${r.old_tip.height - r.depth + 1}..${r.old_tip.height} dropped with ${r.dropped_transactions?.length ?? 0} transaction(s) (the payment is gone: hardhat does not return it to a mempool), new tip ${r.new_tip.height} ${r.new_tip.hash.slice(0, 18)}…`);
        }
        await waitUntil('invalid', (i) => i.status === 'invalid');
        break;
      }
    }

    const final = await get();
    const events = await sql<{ type: string }[]>`select type from events where invoice_id = ${invoice.id} order by seq`;
    const path = events.map((e) => STATE_OF[e.type]).filter((s): s is InvoiceStatus => s !== undefined);
    const ran = refund as RefundRun | null;
    const refundResult = ran
      ? {
        ...ran,
        status: (await ctx.api<{ status: string }>('GET', `/v1/refunds/${ran.id}`)).status,
        path: events.map((e) => REFUND_STATE_OF[e.type]).filter((x): x is string => x !== undefined),
        expected_path: REFUND_EXPECTED_PATH,
      }
      : null;

    // Webhooks: wait (up to 15 s) for the receiver to have verified the event of the final state.
    const lastEvent = [...events].reverse().find((e) => STATE_OF[e.type])?.type;
    let webhooks: string[] = [];
    let note: string | null = null;
    if (ctx.runtime.webhooks_url) {
      const file = sandboxPaths(dataDir).webhooksLog;
      const deadline = Date.now() + 15_000;
      for (;;) {
        webhooks = readWebhookLog(file).filter((e) => e.invoice_id === invoice.id && e.verified).map((e) => e.type ?? '?');
        if ((lastEvent && webhooks.includes(lastEvent)) || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      if (lastEvent && !webhooks.includes(lastEvent)) note = `${lastEvent} was not received by the webhook receiver within 15 s (is webhook delivery running in the worker?)`;
    } else {
      note = 'no webhook endpoint registered (this build has no /v1/webhook_endpoints); events from the event log: ' + events.map((e) => e.type).join(', ');
    }

    const exp = EXPECT[name];
    const ok =
      JSON.stringify(path) === JSON.stringify(exp.path) &&
      final.exception === exp.exception &&
      (exp.observed ?? []).every((x) => observed.has(x)) &&
      (refundResult === null || JSON.stringify(refundResult.path) === JSON.stringify(refundResult.expected_path));
    return {
      scenario: name, invoice: invoice.id, method, path, expected_path: exp.path, exception: final.exception,
      expected_exception: exp.exception, observed_exceptions: [...observed], webhooks, webhooks_note: note, steps, refund: refundResult, ok,
    };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export function readWebhookLog(file: string): WebhookLogEntry[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as WebhookLogEntry];
      } catch {
        return [];
      }
    });
}

export function formatScenario(r: ScenarioResult): string {
  return [
    `scenario ${r.scenario} (${r.method}), invoice ${r.invoice}`,
    `  path:      ${r.path.join(' → ')}${r.exception ? `  [${r.exception}]` : ''}`,
    `  expected:  ${r.expected_path.join(' → ')}${r.expected_exception ? `  [${r.expected_exception}]` : ''}`,
    ...(r.observed_exceptions.length ? [`  seen:      ${r.observed_exceptions.join(', ')}`] : []),
    ...(r.refund ? [
      `  refund:    ${r.refund.id}, ${r.refund.amount} ${r.refund.asset} to ${r.refund.destination}, tx ${r.refund.txid}`,
      `  its path:  ${r.refund.path.join(' → ')}`,
      `  expected:  ${r.refund.expected_path.join(' → ')}`,
    ] : []),
    `  webhooks:  ${r.webhooks.length ? r.webhooks.join(', ') : '(none)'}${r.webhooks_note ? `\n  note:      ${r.webhooks_note}` : ''}`,
    r.ok ? 'OK' : 'FAILED: the path does not match the expectation',
  ].join('\n');
}
