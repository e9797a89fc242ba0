/**
 * The invariants checked after a scenario quiesces, each failing with the offending ids:
 * 1. every on-chain payment to a deposit address is recorded exactly once (chain truth: the devnet's
 *    best chain blocks; eth_getLogs + our native transfers in the canonical chain + balances);
 *    native coin (docs/evm.md, "Flushes, whoever calls them"): every wei that reached an EVM deposit
 *    address — plain transfers and internal transfers from a contract — is credited exactly once,
 *    whoever flushed it: Σ live native payments of the address = its balance + Σ its Flushed logs in
 *    the best chain (and the harness's own tally of what it sent there agrees);
 * 1e. every forwarder Flushed log of a deposit address in the best chain is in evm_outflows once
 *    (chain, txid, log index; same amount and block), and no row is kept for a block reorged out;
 * 2. each invoice's state equals the state recomputed from its payments (state-machine evaluate);
 * 3. the ledger balances per txn and asset; available + pending equal the live payments;
 * 4. every state change has its event; every event reached the receiver with a valid signature;
 * 5. no two invoices share an address;
 * 6. the reconciliation report's totals equal the chain's;
 * 7. the reconciliation report adds up: totals = Σ counted rows, in JSON and CSV; rows that are
 *    not counted carry no value (report-invariant.ts);
 * 8. an invoice is paid (processing/settled) only by payments Kassa's own records show on time:
 *    first seen at or before expires_at, or in a block at or below a tip height the harness saw
 *    the watcher record at or before expires_at (never a miner's block timestamp);
 * 9. marks: the ledger of a marked invoice equals what its final state implies (a settled mark
 *    writes off the shortfall once, an invalid mark owes back what was paid), however often it was marked.
 * 10. refunds (refund-invariant.ts R1–R7): one transaction per refund, paid once and exactly on
 *    chain (the customer's fresh address received the amount, nothing for a cancelled or failed
 *    one), never more than the confirmed payments per invoice and asset, terminal after quiesce
 *    (except a dropped EVM refund transaction: `broadcast`), the ledger books each once, the
 *    report's refund figures equal the money model's. Invariant 3 counts the sent refunds out of `available`.
 * `checkInvariants` re-checks until everything holds or the quiesce time is over (workers catch up,
 * webhooks drain), then returns the last violations.
 */
import type { Hex } from 'viem';
import type { Cluster } from './cluster.ts';
import { evaluate, TRANSITIONS, type PaymentFacts } from '../../src/settlement/state-machine.ts';
import type { InvoiceStatus } from '../../src/invoices/status.ts';
import { bitcoinBlockOutputs, ERC20, FLUSHED_EVENT } from './workload.ts';
import { sleep } from './procs.ts';
import { reportAddsUp, type ReportJson } from './report-invariant.ts';
import { currencyValueOf } from '../../src/money/rate.ts';
import { droppedEvm, refundViolations, type RefundFact } from './refund-invariant.ts';

/** Native coin the harness sent to `to` through a contract (an internal transfer). */
export interface ContractSend { hash: Hex; to: string }

/** A tip height the watcher had recorded (chain_state), sampled by the harness at `at`. */
export interface TipSample { chain: string; height: number; at: Date }

interface PayRow {
  id: string; invoice_id: string; merchant_id: string; chain: string; txid: string; output_index: number; address: string; method: string; asset: string;
  amount: bigint; status: PaymentFacts['status']; block_height: bigint | null; block_hash: string | null; block_time: Date | null; first_seen_at: Date; ledger_state: string; late: boolean;
}

export async function checkInvariants(c: Cluster, o: {
  nativeSent: Hex[]; contractSent?: ContractSend[]; quiesceMs: number; log: (l: string) => void; tipSamples?: TipSample[]; stats?: Record<string, number>;
  /** Runs before each round (the harness mines blocks for refunds that were sent late). */
  beforeRound?: () => Promise<void>;
}): Promise<string[]> {
  const deadline = Date.now() + o.quiesceMs;
  let v: string[] = [];
  let round = 0;
  for (;;) {
    round++;
    try {
      await o.beforeRound?.();
      v = await checkOnce(c, o.nativeSent, o.contractSent ?? [], o.tipSamples ?? [], o.stats ?? {});
    } catch (err) {
      v = [`check failed: ${(err as Error).message}`];
    }
    if (v.length === 0 || Date.now() > deadline) break;
    if (round % 5 === 1) o.log(`  waiting for quiescence (${v.length} open: ${v[0]})`);
    await sleep(2_000);
  }
  return v;
}

async function checkOnce(c: Cluster, nativeSent: Hex[], contractSent: ContractSend[], tipSamples: TipSample[], stats: Record<string, number>): Promise<string[]> {
  const v: string[] = [];
  const sql = c.sql;
  const pc = c.evm.publicClient;

  // --- chain tips caught up
  const btcTip = await c.btc.call<number>('getblockcount');
  const btcTipHash = await c.btc.call<string>('getblockhash', [btcTip]);
  const evmTipBlock = await pc.getBlock();
  const evmTip = Number(evmTipBlock.number);
  const cs = await sql<{ chain: string; tip_height: bigint | null; tip_hash: string | null }[]>`select chain, tip_height, tip_hash from chain_state`;
  const tipOf = (ch: string) => cs.find((r) => r.chain === ch);
  if (Number(tipOf('bitcoin')?.tip_height) !== btcTip || tipOf('bitcoin')?.tip_hash !== btcTipHash) v.push(`bitcoin watcher not at the node tip: db ${tipOf('bitcoin')?.tip_height}/${tipOf('bitcoin')?.tip_hash} node ${btcTip}/${btcTipHash}`);
  if (Number(tipOf('ethereum')?.tip_height) !== evmTip || tipOf('ethereum')?.tip_hash?.toLowerCase() !== evmTipBlock.hash!.toLowerCase()) v.push(`evm watcher not at the node tip: db ${tipOf('ethereum')?.tip_height} node ${evmTip}`);

  const deposits = await sql<{ chain: string; address: string; invoice_id: string }[]>`select chain, address, invoice_id from deposit_addresses`;
  const payments = await sql<PayRow[]>`
    select id, invoice_id, merchant_id, chain, txid, output_index, address, method, asset, amount, status, block_height, block_hash, block_time, first_seen_at, ledger_state, late from payments`;
  const live = (p: PayRow) => p.status === 'pending' || p.status === 'confirmed';

  // --- 5. no shared addresses
  const dupAddr = await sql<{ chain: string; address: string; n: bigint }[]>`
    select chain, lower(address) as address, count(distinct invoice_id) as n from invoice_payment_methods group by 1, 2 having count(distinct invoice_id) > 1`;
  for (const d of dupAddr) v.push(`address ${d.address} on ${d.chain} shared by ${d.n} invoices`);

  // --- 1a. Bitcoin chain truth
  const btcDeposit = new Set(deposits.filter((d) => d.chain === 'bitcoin').map((d) => d.address));
  const btcTruth = new Map<string, { sats: bigint; height: number }>();
  const refundRows = await sql<{ id: string; invoice_id: string; method: string; chain: string; status: string; amount: bigint; fee: bigint; network_fee: bigint; txid: string | null; destination: string | null; decimals: number; rate: string | null }[]>`
    select r.id, r.invoice_id, r.method, r.chain, r.status, r.amount, r.fee, coalesce(r.network_fee, 0)::numeric as network_fee, r.txid, r.destination, r.decimals, m.rate
    from refunds r left join invoice_payment_methods m on m.invoice_id = r.invoice_id and m.method = r.method order by r.seq`;
  const btcRefundDest = new Set(refundRows.filter((r) => r.chain === 'bitcoin' && r.destination).map((r) => r.destination!));
  const btcRefundTx = new Set(refundRows.filter((r) => r.chain === 'bitcoin' && r.txid).map((r) => r.txid!));
  const toDestination = new Map<string, bigint>();
  const refundTxs = new Map<string, { ins: string[]; outSats: bigint }>();
  for (let h = c.start.bitcoin; h <= btcTip; h++) {
    const b = await bitcoinBlockOutputs(c.btc, await c.btc.call<string>('getblockhash', [h]));
    for (const out of b.outs) {
      if (btcDeposit.has(out.address)) btcTruth.set(`${out.txid}:${out.vout}`, { sats: out.sats, height: h });
      if (btcRefundDest.has(out.address)) toDestination.set(out.address, (toDestination.get(out.address) ?? 0n) + out.sats);
    }
    for (const t of b.txs) if (btcRefundTx.has(t.txid)) refundTxs.set(t.txid, t);
  }
  const btcConfirmed = new Map(payments.filter((p) => p.chain === 'bitcoin' && p.status === 'confirmed').map((p) => [`${p.txid}:${p.output_index}`, p]));
  for (const [k, t] of btcTruth) {
    const p = btcConfirmed.get(k);
    if (!p) {
      const any = payments.find((x) => x.chain === 'bitcoin' && `${x.txid}:${x.output_index}` === k);
      v.push(`bitcoin output ${k} (${t.sats} sat, block ${t.height}) is ${any ? `recorded as ${any.status} (${any.id})` : 'not recorded'}`);
    } else if (p.amount !== t.sats || Number(p.block_height) !== t.height) v.push(`bitcoin payment ${p.id} ${k}: db ${p.amount}@${p.block_height}, chain ${t.sats}@${t.height}`);
  }
  for (const [k, p] of btcConfirmed) if (!btcTruth.has(k)) v.push(`bitcoin payment ${p.id} ${k} is confirmed in the db but not in the best chain`);

  // --- 1b. EVM chain truth: token transfers
  const evmDeposit = new Set(deposits.filter((d) => d.chain === 'ethereum').map((d) => d.address.toLowerCase()));
  const logs = await pc.getLogs({ address: [c.evm.usdc, c.evm.usdt], event: ERC20[1] as never, fromBlock: BigInt(c.start.ethereum), toBlock: BigInt(evmTip) });
  const tokTruth = new Map<string, { amount: bigint; height: number }>();
  for (const l of logs as unknown as { transactionHash: Hex; logIndex: number; blockNumber: bigint; args: { to: Hex; value: bigint } }[]) {
    if (evmDeposit.has(l.args.to.toLowerCase())) tokTruth.set(`${l.transactionHash.toLowerCase()}:${l.logIndex}`, { amount: l.args.value, height: Number(l.blockNumber) });
  }
  const evmConfirmed = payments.filter((p) => p.chain === 'ethereum' && p.status === 'confirmed');
  const tokDb = new Map(evmConfirmed.filter((p) => p.output_index >= 0).map((p) => [`${p.txid.toLowerCase()}:${p.output_index}`, p]));
  for (const [k, t] of tokTruth) {
    const p = tokDb.get(k);
    if (!p) v.push(`token transfer ${k} (${t.amount}, block ${t.height}) is not recorded as confirmed`);
    else if (p.amount !== t.amount || Number(p.block_height) !== t.height) v.push(`token payment ${p.id} ${k}: db ${p.amount}@${p.block_height}, chain ${t.amount}@${t.height}`);
  }
  for (const [k, p] of tokDb) if (!tokTruth.has(k)) v.push(`token payment ${p.id} ${k} is confirmed in the db but not in the canonical chain`);

  // --- 1c. EVM native: our transfers that succeeded in the canonical chain; balances
  const nativeTruth = new Map<string, { wei: bigint; height: number; to: string }>();
  for (const hash of new Set(nativeSent)) {
    const r = await pc.getTransactionReceipt({ hash }).catch(() => null);
    if (!r || r.status !== 'success') continue;
    const b = await pc.getBlock({ blockNumber: r.blockNumber });
    if (b.hash !== r.blockHash) continue;
    const tx = await pc.getTransaction({ hash });
    nativeTruth.set(`${hash.toLowerCase()}:-1`, { wei: tx.value, height: Number(r.blockNumber), to: tx.to!.toLowerCase() });
  }
  const nativeDb = new Map(evmConfirmed.filter((p) => p.output_index === -1).map((p) => [`${p.txid.toLowerCase()}:-1`, p]));
  for (const [k, t] of nativeTruth) {
    if (!evmDeposit.has(t.to)) continue;
    const p = nativeDb.get(k);
    if (!p) v.push(`native transfer ${k} (${t.wei} wei, block ${t.height}) is not recorded as confirmed`);
    else if (p.amount !== t.wei || Number(p.block_height) !== t.height) v.push(`native payment ${p.id} ${k}: db ${p.amount}@${p.block_height}, chain ${t.wei}@${t.height}`);
  }
  for (const [k, p] of nativeDb) if (!nativeTruth.has(k)) v.push(`native payment ${p.id} ${k} is confirmed in the db but not in the canonical chain`);
  // Internal transfers: the harness's contract sends that succeeded in the canonical chain.
  const add = (m: Map<string, bigint>, k: string, x: bigint) => m.set(k, (m.get(k) ?? 0n) + x);
  const sentTo = new Map<string, bigint>();
  for (const t of nativeTruth.values()) add(sentTo, t.to, t.wei);
  for (const s of contractSent) {
    const r = await pc.getTransactionReceipt({ hash: s.hash }).catch(() => null);
    if (!r || r.status !== 'success') continue;
    const b = await pc.getBlock({ blockNumber: r.blockNumber });
    if (b.hash !== r.blockHash) continue;
    add(sentTo, s.to, (await pc.getTransaction({ hash: s.hash })).value);
  }
  // Flushes by anyone: the forwarders' Flushed logs in the canonical chain.
  const flushLogs = (await pc.getLogs({ event: FLUSHED_EVENT, fromBlock: BigInt(c.start.ethereum), toBlock: BigInt(evmTip) }))
    .filter((l) => evmDeposit.has(l.address.toLowerCase()));
  const flushed = new Map<string, bigint>();
  for (const l of flushLogs) add(flushed, l.address.toLowerCase(), l.args.amount!);
  stats['flushed_logs'] = flushLogs.length;
  stats['flushed_addresses'] = flushed.size;
  const nativeByAddr = new Map<string, bigint>();
  for (const p of payments) if (p.chain === 'ethereum' && p.output_index < 0 && live(p)) add(nativeByAddr, p.address.toLowerCase(), p.amount);
  const reachedBy = new Map<string, bigint>();
  for (const a of evmDeposit) {
    const bal = await pc.getBalance({ address: a as Hex });
    const out = flushed.get(a) ?? 0n;
    const reached = bal + out; // on-chain balance = all inflows − all flushes
    reachedBy.set(a, reached);
    const rec = nativeByAddr.get(a) ?? 0n;
    if (reached !== rec) v.push(`deposit ${a}: ${reached} wei reached it (balance ${bal} + flushed ${out}), live native payments ${rec} wei`);
    const sent = sentTo.get(a) ?? 0n;
    if (sent !== reached) v.push(`harness: deposit ${a}: the harness sent ${sent} wei (plain + via contract) in the canonical chain, the chain shows ${reached} wei`);
  }

  // --- 1e. every canonical flush of a deposit address is in evm_outflows once; none of another branch
  const outRows = await sql<{ chain: string; txid: string; log_index: number; address: string; amount: bigint; block_number: bigint; block_hash: string }[]>`
    select chain, txid, log_index, address, amount, block_number, block_hash from evm_outflows`;
  const outSeen = new Map<string, number>();
  for (const o of outRows) { const k = `${o.chain}:${o.txid.toLowerCase()}:${o.log_index}`; outSeen.set(k, (outSeen.get(k) ?? 0) + 1); }
  for (const [k, n] of outSeen) if (n > 1) v.push(`flush ${k} is in evm_outflows ${n} times`);
  const outDb = new Map(outRows.filter((o) => o.chain === 'ethereum').map((o) => [`${o.txid.toLowerCase()}:${o.log_index}`, o]));
  const flushKeys = new Set<string>();
  for (const l of flushLogs) {
    const k = `${l.transactionHash.toLowerCase()}:${l.logIndex}`;
    flushKeys.add(k);
    const o = outDb.get(k);
    if (!o) v.push(`flush ${k} (${l.args.amount} wei out of ${l.address.toLowerCase()}, block ${l.blockNumber}) is not in evm_outflows`);
    else if (o.amount !== l.args.amount || Number(o.block_number) !== Number(l.blockNumber) || o.block_hash.toLowerCase() !== l.blockHash.toLowerCase() || o.address.toLowerCase() !== l.address.toLowerCase()) {
      v.push(`flush ${k}: evm_outflows ${o.amount}@${o.block_number}/${o.block_hash} from ${o.address}, chain ${l.args.amount}@${l.blockNumber}/${l.blockHash} from ${l.address.toLowerCase()}`);
    }
  }
  for (const [k, o] of outDb) if (!flushKeys.has(k)) v.push(`evm_outflows ${k} (${o.amount} wei, block ${o.block_number} ${o.block_hash}) is not a flush in the canonical chain (its block was reorged out?)`);
  for (const p of payments) if (p.status === 'pending') v.push(`payment ${p.id} (${p.chain} ${p.txid}:${p.output_index}) still pending after quiesce`);

  // --- 1d. exactly once
  const seen = new Map<string, number>();
  for (const p of payments) { const k = `${p.chain}:${p.txid.toLowerCase()}:${p.output_index}`; seen.set(k, (seen.get(k) ?? 0) + 1); }
  for (const [k, n] of seen) if (n > 1) v.push(`payment ${k} recorded ${n} times`);

  // --- 2. state recomputed from payments
  const invoices = await sql<{ id: string; status: InvoiceStatus; exception: string | null; amount: bigint; amount_paid: bigint; currency_decimals: number; tolerance_bps: number; expires_at: Date; monitoring_until: Date; marked_at: Date | null }[]>`
    select id, status, exception, amount, amount_paid, currency_decimals, tolerance_bps, expires_at, monitoring_until, marked_at from invoices`;
  const methods = await sql<{ invoice_id: string; method: string; rate: string; decimals: number; confirmations_required: number; chain: string; token: string | null }[]>`
    select invoice_id, method, rate, decimals, confirmations_required, chain, token from invoice_payment_methods`;
  const tips: Record<string, number> = { bitcoin: btcTip, ethereum: evmTip };
  const confs = (p: PayRow) => (p.status === 'confirmed' && p.block_height !== null ? Math.max(0, tips[p.chain]! - Number(p.block_height) + 1) : 0);
  const now = new Date();
  const byInv = <T extends { invoice_id: string }>(rows: T[]) => { const m = new Map<string, T[]>(); for (const r of rows) m.set(r.invoice_id, [...(m.get(r.invoice_id) ?? []), r]); return m; };
  const payBy = byInv(payments);
  const methBy = byInv(methods);
  const receivedBy = new Map<string, bigint>();
  for (const inv of invoices) {
    const ms = methBy.get(inv.id) ?? [];
    const ps = payBy.get(inv.id) ?? [];
    const facts = { status: inv.status, amount: inv.amount, currencyDecimals: inv.currency_decimals, toleranceBps: inv.tolerance_bps, expiresAt: inv.expires_at, monitoringUntil: inv.monitoring_until, marked: inv.marked_at !== null };
    const terms = ms.map((m) => ({ method: m.method, rate: m.rate, decimals: m.decimals, confirmationsRequired: m.confirmations_required }));
    const pf = ps.map((p) => ({ method: p.method, amount: p.amount, status: p.status, confirmations: confs(p), firstSeenAt: p.first_seen_at, blockTime: p.block_time }));
    const ev = evaluate(facts, terms, pf, now);
    // docs/reconciliation.md, "What counts": amount_paid is the value of the counted payments —
    // live, in an offered asset, and on time (payments.late), except that a mark to settled counts
    // every such payment and a mark to invalid none. `received` is every live payment in an offered asset.
    let received = 0n;
    let onTime = 0n;
    for (const p of ps) {
      const m = ms.find((x) => x.method === p.method);
      if (!m || (p.status !== 'pending' && p.status !== 'confirmed')) continue;
      const value = currencyValueOf(p.amount, m.decimals, m.rate, inv.currency_decimals);
      received += value;
      if (!p.late) onTime += value;
    }
    receivedBy.set(inv.id, received);
    const marked = inv.marked_at !== null ? inv.status : null;
    const counted = marked === 'settled' ? received : marked === 'invalid' ? 0n : onTime;
    if (ev.status !== inv.status || ev.exception !== inv.exception || counted !== inv.amount_paid) {
      v.push(`invoice ${inv.id}: db ${inv.status}/${inv.exception}/${inv.amount_paid}, recomputed ${ev.status}/${ev.exception}/${counted}`);
    }
    const scratch = evaluate({ ...facts, status: 'new' }, terms, pf, now);
    const sameFromScratch = inv.marked_at !== null // staff decided by hand
      || scratch.status === inv.status || (inv.status === 'invalid' && (scratch.status === 'new' || scratch.status === 'expired'));
    if (!sameFromScratch) v.push(`invoice ${inv.id}: db ${inv.status}, from scratch ${scratch.status}`);
    for (const p of ps) {
      const need = ms.find((m) => m.method === p.method)?.confirmations_required;
      const want = !live(p) ? ['none', 'reversed'] : [need !== undefined && confs(p) >= need ? 'available' : 'pending'];
      if (!want.includes(p.ledger_state)) v.push(`payment ${p.id} (${inv.id}): ledger_state ${p.ledger_state}, expected ${want.join('|')}`);
    }
  }

  // --- 3. ledger
  const unbalanced = await sql<{ txn_id: string; asset: string; s: bigint }[]>`select txn_id, asset, sum(amount) as s from ledger_entries group by 1, 2 having sum(amount) <> 0`;
  for (const u of unbalanced) v.push(`ledger txn ${u.txn_id} ${u.asset} sums to ${u.s}`);
  const bal = await sql<{ merchant_id: string; asset: string; s: bigint }[]>`
    select merchant_id, asset, sum(amount) as s from ledger_entries
    where account = 'merchant:' || merchant_id || ':available' or account = 'merchant:' || merchant_id || ':pending' group by 1, 2`;
  const livePer = new Map<string, bigint>();
  for (const p of payments) if (live(p)) livePer.set(`${p.merchant_id}:${p.method}`, (livePer.get(`${p.merchant_id}:${p.method}`) ?? 0n) + p.amount);
  // Sent refunds (broadcast or completed) left `available` (docs/refunds.md, "For finance staff").
  for (const r of refundRows) {
    if (r.status !== 'broadcast' && r.status !== 'completed') continue;
    const k = `${c.merchant.id}:${r.method}`;
    livePer.set(k, (livePer.get(k) ?? 0n) - r.amount - BigInt(r.network_fee));
  }
  const balPer = new Map(bal.map((b) => [`${b.merchant_id}:${b.asset}`, b.s]));
  for (const k of new Set([...livePer.keys(), ...balPer.keys()])) {
    const a = balPer.get(k) ?? 0n, b = livePer.get(k) ?? 0n;
    // Sign convention: merchant accounts may be debit-positive or credit-negative; compare magnitudes.
    if (a !== b && -a !== b) v.push(`balance ${k}: available+pending ${a}, live payments − sent refunds ${b}`);
  }

  // --- 4. events and deliveries
  const events = await sql<{ id: string; type: string; invoice_id: string | null; payment_id: string | null; status: InvoiceStatus | null; relayed_at: Date | null }[]>`
    select id, type, invoice_id, payload->'payment'->>'id' as payment_id, payload->'object'->>'status' as status, relayed_at from events order by seq`;
  const evBy = new Map<string, { type: string; status: InvoiceStatus | null }[]>();
  for (const e of events) if (e.invoice_id) evBy.set(e.invoice_id, [...(evBy.get(e.invoice_id) ?? []), e]);
  for (const inv of invoices) {
    let s: InvoiceStatus = 'new';
    for (const { type: t, status: marked } of evBy.get(inv.id) ?? []) {
      const to: InvoiceStatus | undefined = (Object.keys(TRANSITIONS[s]) as InvoiceStatus[]).find((k) => TRANSITIONS[s][k] === t);
      if (t === 'invoice.marked' && marked) s = marked; // staff set the status by hand
      else if (to) s = to;
      else if (['invoice.processing', 'invoice.settled', 'invoice.expired', 'invoice.invalid'].includes(t)) { v.push(`invoice ${inv.id}: event ${t} while in ${s}`); }
    }
    if (s !== inv.status) v.push(`invoice ${inv.id}: events lead to ${s}, db status ${inv.status}`);
  }
  const detected = new Set(events.filter((e) => e.type === 'invoice.payment_detected').map((e) => e.payment_id));
  for (const p of payments) if (!detected.has(p.id)) v.push(`payment ${p.id} has no invoice.payment_detected event`);
  const delivered = new Set(c.receiver.deliveries.filter((d) => d.valid).map((d) => d.eventId));
  const undelivered = events.filter((e) => !delivered.has(e.id));
  // Where each one stands (to tell a lost job from a hung worker or a retry schedule running late).
  const rows = undelivered.length === 0 ? [] : await sql<{ event_id: string; id: string; status: string; attempt_count: number; locked_until: Date | null; next_attempt_at: Date | null }[]>`
    select event_id, id, status, attempt_count, locked_until, next_attempt_at from webhook_deliveries where event_id in ${sql(undelivered.map((e) => e.id))}`;
  const stateOf = (id: string) => rows.filter((r) => r.event_id === id).map((r) =>
    `${r.id} ${r.status}, ${r.attempt_count} attempts, locked until ${r.locked_until?.toISOString() ?? '-'}, next ${r.next_attempt_at?.toISOString() ?? '-'}`).join('; ') || 'no delivery row';
  for (const e of undelivered) v.push(`event ${e.id} (${e.type}, ${e.invoice_id}) never reached the receiver${e.relayed_at ? '' : ' (not relayed)'} [${stateOf(e.id)}]`);
  const bad = c.receiver.deliveries.filter((d) => !d.valid);
  for (const d of bad) v.push(`delivery ${d.webhookId} had an invalid signature: ${d.error}`);
  const failed = await sql<{ id: string; event_id: string }[]>`select id, event_id from webhook_deliveries where status = 'failed'`;
  for (const f of failed) v.push(`webhook delivery ${f.id} (event ${f.event_id}) failed for good`);

  // --- 6. reconciliation report vs chain truth
  const from = new Date(Date.now() - 86_400_000).toISOString();
  const to = new Date(Date.now() + 86_400_000).toISOString();
  const rep = await c.api$('GET', `/v1/reports/reconciliation?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
  if (rep.status !== 200) v.push(`reconciliation report: HTTP ${rep.status}`);
  else {
    const truth = new Map<string, bigint>();
    const add = (m: string, x: bigint) => truth.set(m, (truth.get(m) ?? 0n) + x);
    for (const t of btcTruth.values()) add('BTC', t.sats);
    for (const [k, t] of tokTruth) {
      const p = tokDb.get(k);
      add(p?.method ?? 'token?', t.amount);
    }
    for (const a of evmDeposit) add('ETH-ethereum', reachedBy.get(a) ?? 0n);
    const perAsset = (rep.body.totals?.per_asset ?? []) as { method: string; received: string }[];
    const dec: Record<string, number> = { BTC: 8, 'ETH-ethereum': 18, 'USDC-ethereum': 6, 'USDT-ethereum': 6 };
    for (const m of new Set([...truth.keys(), ...perAsset.map((p) => p.method)])) {
      const r = perAsset.find((p) => p.method === m);
      const reported = r ? toUnits(r.received, dec[m] ?? 0) : 0n;
      const t = truth.get(m) ?? 0n;
      if (reported !== t) v.push(`reconciliation ${m}: report received ${reported}, chain ${t}`);
    }
    // --- 7. the report adds up (JSON and CSV)
    const csv = await c.api$('GET', `/v1/reports/reconciliation?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&format=csv`);
    if (csv.status !== 200 || typeof csv.body !== 'string') v.push(`reconciliation report CSV: HTTP ${csv.status}`);
    else v.push(...reportAddsUp(rep.body as ReportJson, csv.body));
  }

  // --- 10. refunds (refund-invariant.ts)
  {
    const confirmed = new Map<string, bigint>();
    for (const p of payments) if (p.status === 'confirmed') confirmed.set(`${p.invoice_id}|${p.method}`, (confirmed.get(`${p.invoice_id}|${p.method}`) ?? 0n) + p.amount);
    const payAmount = new Map(payments.filter((p) => p.chain === 'bitcoin').map((p) => [`${p.txid}:${p.output_index}`, p.amount]));
    const ledgerRows = await sql<{ invoice_id: string; asset: string; kind: string; n: number; outflow: bigint }[]>`
      select invoice_id, asset, kind, count(distinct txn_id)::int as n, coalesce(sum(amount) filter (where account like 'chain:%:outflow'), 0)::numeric as outflow
      from ledger_entries where kind like 'refund%' group by 1, 2, 3`;
    const ledger = new Map<string, { txns: Record<string, number>; outflow: bigint }>();
    for (const l of ledgerRows) {
      const e = ledger.get(`${l.invoice_id}|${l.asset}`) ?? { txns: {}, outflow: 0n };
      e.txns[l.kind] = l.n;
      e.outflow += BigInt(l.outflow);
      ledger.set(`${l.invoice_id}|${l.asset}`, e);
    }
    const evRows = await sql<{ refund_id: string; type: string; n: number }[]>`
      select payload->'object'->>'id' as refund_id, type, count(*)::int as n from events where type like 'refund.%' group by 1, 2`;
    const facts: RefundFact[] = [];
    for (const r of refundRows) {
      let paidOnChain = 0n;
      let chainFee: bigint | null = null;
      let known = true;
      if (r.chain === 'bitcoin') {
        paidOnChain = r.destination ? toDestination.get(r.destination) ?? 0n : 0n;
        const t = r.txid ? refundTxs.get(r.txid) : undefined;
        if (t) {
          const ins = t.ins.map((k) => payAmount.get(k));
          chainFee = ins.every((x) => x !== undefined) ? ins.reduce((a, x) => a + x!, 0n) - t.outSats : -1n;
        }
      } else if (r.destination) {
        const token = r.method === 'USDC-ethereum' ? c.evm.usdc : r.method === 'USDT-ethereum' ? c.evm.usdt : null;
        paidOnChain = token
          ? await pc.readContract({ address: token, abi: ERC20_BALANCE, functionName: 'balanceOf', args: [r.destination as Hex] })
          : await pc.getBalance({ address: r.destination as Hex });
        if (r.txid) known = await pc.getTransaction({ hash: r.txid as Hex }).then(() => true, () => false);
      }
      facts.push({
        id: r.id, invoiceId: r.invoice_id, method: r.method, chain: r.chain, amount: BigInt(r.amount), networkFee: BigInt(r.network_fee), decimals: r.decimals, rate: r.rate,
        status: r.status, fee: BigInt(r.fee), txid: r.txid, destination: r.destination, paidOnChain, chainFee, known,
        events: Object.fromEntries(evRows.filter((e) => e.refund_id === r.id).map((e) => [e.type, e.n])),
      });
    }
    const currencyOf = new Map((await sql<{ id: string; currency: string; currency_decimals: number }[]>`select id, currency, currency_decimals from invoices`).map((i) => [i.id, { currency: i.currency, decimals: i.currency_decimals }]));
    v.push(...refundViolations({
      refunds: facts, confirmed, ledger, report: rep.status === 200 ? rep.body : null, currencyOf,
      methodDecimals: { BTC: 8, 'ETH-ethereum': 18, 'USDC-ethereum': 6, 'USDT-ethereum': 6 },
    }));
    for (const k of Object.keys(stats)) if (k.startsWith('refunds_')) delete stats[k];
    const byStatus: Record<string, number> = {};
    for (const f of facts) byStatus[droppedEvm(f) ? 'broadcast_dropped' : f.status] = (byStatus[droppedEvm(f) ? 'broadcast_dropped' : f.status] ?? 0) + 1;
    for (const [k, n] of Object.entries(byStatus)) stats[`refunds_${k}`] = n;
  }

  // --- 8. paid only by payments Kassa's own records show on time (never a miner's clock)
  const maxTipBy = (chain: string, at: Date) => tipSamples.filter((t) => t.chain === chain && t.at <= at).reduce((m, t) => Math.max(m, t.height), -1);
  for (const inv of invoices) {
    if (inv.marked_at !== null || (inv.status !== 'processing' && inv.status !== 'settled')) continue;
    const ms = methBy.get(inv.id) ?? [];
    let onTime = 0n;
    for (const p of payBy.get(inv.id) ?? []) {
      const m = ms.find((x) => x.method === p.method);
      if (!m || !live(p)) continue;
      const seenInTime = p.first_seen_at <= inv.expires_at;
      const minedInTime = p.status === 'confirmed' && p.block_height !== null && Number(p.block_height) <= maxTipBy(p.chain, inv.expires_at);
      if (seenInTime || minedInTime) onTime += currencyValueOf(p.amount, m.decimals, m.rate, inv.currency_decimals);
    }
    const threshold = (inv.amount * BigInt(10000 - inv.tolerance_bps) + 9999n) / 10000n;
    if (onTime < threshold) v.push(`invoice ${inv.id} is ${inv.status}, but by Kassa's own clock only ${onTime} of ${threshold} arrived by expires_at ${inv.expires_at.toISOString()}`);
  }

  // --- 9. marks book what the final state implies, once
  const markBooks = await sql<{ invoice_id: string; account: string; s: bigint }[]>`
    select l.invoice_id, l.account, sum(l.amount)::numeric as s from ledger_entries l join invoices i on i.id = l.invoice_id
    where l.asset = i.currency group by 1, 2`;
  const currencyOf = await sql<{ id: string; merchant_id: string; currency: string }[]>`select id, merchant_id, currency from invoices`;
  for (const inv of invoices) {
    const mid = currencyOf.find((x) => x.id === inv.id)!.merchant_id;
    const bal = (suffix: string) => BigInt(markBooks.find((b) => b.invoice_id === inv.id && b.account === `merchant:${mid}:${suffix}`)?.s ?? 0n);
    // A settled mark writes off what is missing of the price; an invalid mark owes back everything received.
    const received = receivedBy.get(inv.id) ?? 0n;
    const writtenOff = inv.marked_at !== null && inv.status === 'settled' && received < inv.amount ? inv.amount - received : 0n;
    const refundDue = inv.marked_at !== null && inv.status === 'invalid' ? received : 0n;
    const got = `written_off=${bal('written_off')} refund_due=${bal('refund_due')} invoiced=${bal('invoiced')}`;
    const want = `written_off=${writtenOff} refund_due=${refundDue} invoiced=${-(writtenOff + refundDue)}`;
    if (got !== want) v.push(`invoice ${inv.id} (${inv.status}${inv.marked_at ? ', marked' : ''}): ledger ${got}, final state implies ${want}`);
  }
  return v;
}

const ERC20_BALANCE = [{ type: 'function', name: 'balanceOf', stateMutability: 'view', inputs: [{ name: 'a', type: 'address' }], outputs: [{ name: '', type: 'uint256' }] }] as const;

function toUnits(s: string, d: number): bigint {
  const [i, f = ''] = s.split('.');
  return BigInt(i! + f.padEnd(d, '0').slice(0, d));
}
