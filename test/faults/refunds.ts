/**
 * The merchant's and the customer's side of refunds in the fault harness (docs/refunds.md), over
 * the HTTP API only, while the fault loop kills processes:
 * - create refunds of invoices with confirmed payments (`full`, `overpaid`, a decimal amount in the
 *   asset, and now and then one deliberately above what arrived, which must be refused);
 * - the customer claims each with a fresh address of their own (Bitcoin: a random regtest key;
 *   EVM: a random account), so whatever reaches that address on chain is exactly what the refund paid;
 * - the merchant approves, then signs: Bitcoin by signing the PSBT with the merchant's account key
 *   (the harness holds it; Kassa only has the tpub) and uploading it; EVM by signing the prepared
 *   transaction with the treasury's key (hardhat account 1), sending it to the node and reporting
 *   the hash;
 * - kill -9 between signing and broadcast: the API is killed while the signed PSBT is being uploaded
 *   (Kassa records it, then sends it: a kill in between leaves a recorded transaction the node does
 *   not have, which the worker's tracker must send); for EVM the API or a worker is killed after
 *   the wallet signed and before the transaction is sent or reported; the harness then does what a
 *   merchant would: uploads or reports the same signed transaction again, never signs a second one;
 * - repeated uploads and reports of the same transaction, cancellations before broadcast.
 * `finish` drives every refund to broadcast or to cancelled after the workload (the quiesce phase).
 */
import { randomBytes } from 'node:crypto';
import * as bitcoin from 'bitcoinjs-lib';
import { BIP32Factory } from 'bip32';
import * as ecc from '@bitcoinerlab/secp256k1';
import { createWalletClient, http, keccak256, type Hex, type PublicClient } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { hardhat } from 'viem/chains';
import { HARDHAT_ACCOUNTS } from '../support/hardhat.ts';
import { TEST_TREASURY } from '../support/merchant.ts';
import { signRefundPsbt } from '../support/refund-wallet.ts';
import type { Cluster } from './cluster.ts';
import { sleep, type Proc } from './procs.ts';
import { ERC20, formatUnits, type Prng } from './workload.ts';

const bip32 = BIP32Factory(ecc);
const REGTEST = bitcoin.networks.regtest;
const FINAL = new Set(['completed', 'cancelled', 'failed']);

/** What only the harness (the merchant's wallet) knows about a refund. */
interface Local {
  /** The signed PSBT uploaded (Bitcoin): the same one is uploaded again, never a second signature. */
  signedPsbt?: string;
  /** The signed EVM transaction and its hash: sent and reported again, never signed twice. */
  raw?: Hex;
  hash?: Hex;
}

export interface RefundDriver {
  /** Creates a refund of a random invoice with a confirmed payment (EVM ones only when `evmSafe`). */
  create(r: Prng, invoiceIds: string[], evmSafe: boolean): Promise<void>;
  /** Moves a random open refund one step on (claim, approve, sign and send, or re-send), maybe with a kill in the signing window. */
  advance(r: Prng): Promise<void>;
  /** After the workload: every refund to broadcast (or cancelled when Kassa refuses to go on), within `ms`. */
  finish(ms: number): Promise<void>;
  /** Violations the driver saw itself (an answer that must not happen). */
  violations: string[];
}

export function refundDriver(c: Cluster, o: {
  count: (k: string) => void; log: (l: string) => void; paused: { bitcoin: boolean; ethereum: boolean };
  /** Restarts a process the driver killed (shared with the fault loop, so only one restart runs). */
  restart: (p: Proc) => Promise<void>;
}): RefundDriver {
  const local = new Map<string, Local>();
  const violations: string[] = [];
  const chain = { ...hardhat, rpcUrls: { default: { http: [c.evm.url] } } };
  const treasury = privateKeyToAccount(HARDHAT_ACCOUNTS[1]!.privateKey);
  if (treasury.address.toLowerCase() !== TEST_TREASURY.toLowerCase()) throw new Error('hardhat account 1 is not the test treasury');
  const wallet = createWalletClient({ account: treasury, chain, transport: http(c.evm.url, { timeout: 15_000, retryCount: 0 }) });
  const pc: PublicClient = c.evm.publicClient;
  let treasuryFunded = false;
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn, fn);
    queue = p.catch(() => {});
    return p;
  };

  const idem = () => ({ 'Idempotency-Key': `faults-${randomBytes(8).toString('hex')}` });
  /**
   * A 5xx answer is a defect (bad input gets a 4xx), recorded, not thrown — except the retryable
   * ones a fault explains: 502 (a paused node did not answer) and 503 (the database connection was lost).
   */
  const check = (what: string, res: { status: number; body: any }) => {
    if (res.status >= 500 && res.status !== 502 && res.status !== 503) violations.push(`refund API: ${what} answered ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    return res;
  };
  const codeOf = (res: { body: any }) => String(res.body?.error?.code ?? 'unknown');

  async function fundTreasury(): Promise<void> {
    if (treasuryFunded) return;
    // The forwarders' money reaches the treasury through flushes; for refunds it simply holds some tokens.
    const deployer = createWalletClient({ account: privateKeyToAccount(HARDHAT_ACCOUNTS[0]!.privateKey), chain, transport: http(c.evm.url, { timeout: 15_000, retryCount: 0 }) });
    for (const token of [c.evm.usdc, c.evm.usdt]) {
      const hash = await deployer.writeContract({ address: token, abi: ERC20, functionName: 'transfer', args: [treasury.address, 100_000_000_000n], account: deployer.account, chain });
      await pc.waitForTransactionReceipt({ hash, timeout: 30_000 });
    }
    treasuryFunded = true;
  }

  async function killInWindow(r: Prng, why: string): Promise<Proc> {
    const p = r.chance(0.6) ? c.api : r.pick(c.workers);
    o.log(`  fault: kill -9 ${p.name} (pid ${p.pid}) ${why}`);
    await p.kill9();
    o.count(`refund_kill_${p === c.api ? 'api' : 'worker'}`);
    return p;
  }

  const isEvm = (method: string) => method !== 'BTC';

  async function create(r: Prng, invoiceIds: string[], evmSafe: boolean): Promise<void> {
    if (invoiceIds.length === 0) return;
    const paid = await c.sql<{ invoice_id: string; method: string; received: bigint }[]>`
      select invoice_id, method, sum(amount)::numeric as received from payments
      where status = 'confirmed' and invoice_id = any(${invoiceIds}) group by 1, 2`;
    const choices = paid.filter((p) => (isEvm(p.method) ? evmSafe && !o.paused.ethereum : !o.paused.bitcoin));
    if (choices.length === 0) return;
    const p = r.pick(choices);
    const received = BigInt(p.received);
    const asset = p.method.split('-')[0]!;
    const decimals = p.method === 'BTC' ? 8 : p.method === 'ETH-ethereum' ? 18 : 6;
    const kind = r.weighted({ full: 2, overpaid: 2, part: 2, tooMuch: 0.5 });
    const body: Record<string, unknown> = { method: p.method, reason: 'fault harness' };
    if (kind === 'full' || kind === 'overpaid') {
      body.amount = kind;
      // A full Bitcoin refund leaves no change for the network fee: deduct one (docs/refunds.md, rule 5).
      if (kind === 'full' && p.method === 'BTC') body.fee = '0.00002';
    }
    else {
      const units = kind === 'tooMuch' ? received + 1n : (received * BigInt(r.int(10, 60))) / 100n;
      if (units <= 0n) return;
      body.amount = formatUnits(units, decimals);
      body.amount_currency = asset;
    }
    const res = check('create', await c.api$('POST', `/v1/invoices/${p.invoice_id}/refunds`, body, idem()));
    if (res.status === 201) {
      local.set(res.body.id, {});
      o.count(`refund_created:${p.method}`);
      // Rule 1: nothing above what arrived. Other refunds may have taken part of it; never more than all of it.
      if (kind === 'tooMuch') violations.push(`refund ${res.body.id}: a refund of ${body.amount} ${asset} on ${p.invoice_id}, which received ${formatUnits(received, decimals)} ${asset} confirmed, was accepted`);
    } else o.count(`refund_create_${res.status}_${codeOf(res)}`);
  }

  /** One step of one refund, from its current state as the API reports it. */
  async function step(id: string, r: Prng | null): Promise<string> {
    const got = check('get', await c.api$('GET', `/v1/refunds/${id}`));
    if (got.status !== 200) return `get ${got.status}`;
    const ref = got.body as Record<string, any>;
    const evm = isEvm(ref.method);
    if ((evm && o.paused.ethereum) || (!evm && o.paused.bitcoin)) return 'paused';
    const mine = local.get(id) ?? {};
    local.set(id, mine);
    // Now and then the merchant cancels a refund that was not sent (never one whose transaction they signed).
    if (r && r.chance(0.05) && ['awaiting_destination', 'awaiting_approval', 'awaiting_signature'].includes(ref.status) && !mine.signedPsbt && !mine.raw) {
      const res = check('cancel', await c.api$('POST', `/v1/refunds/${id}/cancel`, {}, idem()));
      o.count(`refund_cancel_${res.status}`);
      return 'cancel';
    }
    switch (ref.status as string) {
      case 'awaiting_destination': {
        const token = new URL(ref.claim_url).pathname.split('/').pop()!;
        const destination = evm ? privateKeyToAccount(generatePrivateKey()).address : bitcoin.payments.p2wpkh({ pubkey: bip32.fromSeed(randomBytes(32), REGTEST).publicKey, network: REGTEST }).address!;
        const res = await fetch(`${c.apiUrl}/v1/public/refund_claims/${token}`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ destination }), signal: AbortSignal.timeout(15_000),
        });
        const text = await res.text();
        const code = res.status === 200 ? '' : `_${/"code":"([a-z_]+)"/.exec(text)?.[1] ?? 'unknown'}`;
        check('claim', { status: res.status, body: text });
        o.count(`refund_claim_${res.status}${code}`);
        if (res.status === 422 || res.status === 400) await giveUp(id, `claim_${res.status}${code}`);
        return 'claim';
      }
      case 'awaiting_approval': {
        const res = check('approve', await c.api$('POST', `/v1/refunds/${id}/approve`, evm ? {} : { fee_rate: String(r ? r.int(1, 3) : 2) }, idem()));
        o.count(`refund_approve_${res.status}${res.status === 200 ? '' : `_${codeOf(res)}`}`);
        // 422: Kassa cannot prepare it (nothing left to spend, the fee does not fit): documented; cancel.
        if (res.status === 422) await giveUp(id, codeOf(res));
        return 'approve';
      }
      case 'awaiting_signature':
        return evm ? sendEvm(id, ref, mine, r) : uploadPsbt(id, ref, mine, r);
      case 'broadcast': {
        // The same signed transaction again (a merchant retrying): must change nothing.
        if (r && !r.chance(0.3)) return 'wait';
        if (mine.signedPsbt) {
          const res = check('signed_psbt again', await c.api$('POST', `/v1/refunds/${id}/signed_psbt`, { psbt: mine.signedPsbt }, idem()));
          o.count(`refund_psbt_again_${res.status}`);
        } else if (mine.raw) {
          await pc.sendRawTransaction({ serializedTransaction: mine.raw }).catch(() => {});
          const res = check('transaction again', await c.api$('POST', `/v1/refunds/${id}/transaction`, { txid: mine.hash }, idem()));
          o.count(`refund_report_again_${res.status}`);
        }
        return 'again';
      }
      default:
        return 'final';
    }
  }

  async function giveUp(id: string, why: string): Promise<void> {
    const res = check('cancel', await c.api$('POST', `/v1/refunds/${id}/cancel`, {}, idem()));
    o.count(`refund_cancelled_after_${why}`);
    if (res.status !== 200) o.count(`refund_cancel_${res.status}`);
  }

  async function uploadPsbt(id: string, ref: Record<string, any>, mine: Local, r: Prng | null): Promise<string> {
    if (!mine.signedPsbt) {
      mine.signedPsbt = signRefundPsbt(ref.bitcoin.psbt, c.merchant.wallet.account, REGTEST);
      o.count('refund_psbt_signed');
    }
    const upload = c.api$('POST', `/v1/refunds/${id}/signed_psbt`, { psbt: mine.signedPsbt }, idem()).then((x) => check('signed_psbt', x), (err: Error) => ({ status: 0, body: err.message }));
    let killed: Proc | null = null;
    if (r && r.chance(0.35)) {
      // kill -9 while Kassa records and broadcasts it.
      await sleep(r.int(0, 60));
      killed = await killInWindow(r, 'while the signed PSBT is uploaded');
    }
    const res = await upload;
    o.count(`refund_psbt_upload_${res.status}`);
    if (killed) {
      // Where did the kill land? Recorded but not sent is the window the tracker must close.
      const [row] = await c.sql<{ status: string; txid: string | null }[]>`select status, txid from refunds where id = ${id}`;
      const inNode = row?.txid ? await c.btc.call('getrawtransaction', [row.txid, false]).then(() => true, () => false) : false;
      o.count(`refund_psbt_kill_${row?.status}${row?.status === 'broadcast' ? (inNode ? '_sent' : '_not_sent') : ''}`);
      await o.restart(killed);
    }
    if (res.status === 422) o.count(`refund_psbt_refused_${codeOf(res)}`);
    return 'upload';
  }

  async function sendEvm(id: string, ref: Record<string, any>, mine: Local, r: Prng | null): Promise<string> {
    await fundTreasury();
    const k: { p: Proc | null } = { p: null };
    await serial(async () => {
      if (!mine.raw) {
        const t = ref.evm.transaction as { chain_id: number; to: Hex; value: string; data: Hex };
        if (t.chain_id !== chain.id) throw new Error(`refund ${id}: chain ${t.chain_id}`);
        const req = await wallet.prepareTransactionRequest({ to: t.to, value: BigInt(t.value), data: t.data, gas: 200_000n, account: treasury, chain });
        mine.raw = await wallet.signTransaction(req as never);
        mine.hash = keccak256(mine.raw);
        o.count('refund_evm_signed');
        // kill -9 after the wallet signed, before the transaction reaches the node.
        if (r && r.chance(0.25)) k.p = await killInWindow(r, 'after the EVM refund was signed, before it was sent');
      }
      await pc.sendRawTransaction({ serializedTransaction: mine.raw }).catch((err: Error) => o.count(`refund_evm_send_${/nonce too low|already known/i.test(err.message) ? 'known' : 'error'}`));
    });
    const killedBefore = k.p;
    if (killedBefore) await o.restart(killedBefore);
    const report = c.api$('POST', `/v1/refunds/${id}/transaction`, { txid: mine.hash }, idem()).then((x) => check('transaction', x), (err: Error) => ({ status: 0, body: err.message }));
    let killed: Proc | null = null;
    if (r && !killedBefore && r.chance(0.25)) {
      await sleep(r.int(0, 60));
      killed = await killInWindow(r, 'while the EVM refund transaction is reported');
    }
    const res = await report;
    o.count(`refund_report_${res.status}${res.status === 200 || res.status === 0 ? '' : `_${codeOf(res)}`}`);
    if (killed) await o.restart(killed);
    return 'send';
  }

  async function openIds(): Promise<{ id: string; status: string }[]> {
    return c.sql<{ id: string; status: string }[]>`select id, status from refunds order by seq`;
  }

  return {
    violations,
    create,
    async advance(r) {
      const rows = (await openIds()).filter((x) => !FINAL.has(x.status));
      if (rows.length === 0) return;
      const row = r.pick(rows);
      o.count(`refund_step_${await step(row.id, r)}`);
    },
    async finish(ms) {
      const deadline = Date.now() + ms;
      for (;;) {
        const open = (await openIds()).filter((x) => !FINAL.has(x.status) && x.status !== 'broadcast');
        if (open.length === 0) break;
        if (Date.now() > deadline) {
          o.log(`  refunds still open after ${ms} ms: ${open.map((x) => `${x.id}=${x.status}`).join(', ')}`);
          break;
        }
        for (const x of open) await step(x.id, null).catch((err: Error) => o.log(`  refund ${x.id}: ${err.message.split('\n')[0]}`));
        await sleep(500);
      }
      // EVM refunds whose transaction the node lost (a reorg dropped it): the wallet sends the same
      // signed transaction again; when its nonce was taken since, it stays broadcast (docs/refunds.md, "Not yet").
      const sent = await c.sql<{ id: string; chain: string; txid: string }[]>`select id, chain, txid from refunds where status = 'broadcast' and chain = 'ethereum'`;
      for (const s of sent) {
        const raw = local.get(s.id)?.raw;
        if (raw && !(await pc.getTransaction({ hash: s.txid as Hex }).then(() => true, () => false))) {
          await pc.sendRawTransaction({ serializedTransaction: raw }).then(() => o.count('refund_evm_resent'), () => o.count('refund_evm_dropped_for_good'));
        }
      }
    },
  };
}

