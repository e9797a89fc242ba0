/**
 * One seeded fault-injection scenario against a real multi-process deployment (see cluster.ts):
 * a randomized payment workload with reorgs and replacements, blocks whose timestamps are hours
 * early or late (a miner's clock), repeated staff marks, native coin sent by a contract (internal
 * transfers), strangers flushing EVM deposit addresses (between payments, in the same block as one,
 * just before a reorg, while a worker is down, after the last payment), refunds created, claimed,
 * approved, signed and sent over the API (refunds.ts; kill -9 of the API or a worker between signing
 * and broadcast), faults injected at random points (kill -9 of workers and of the API among them),
 * then quiesce (every refund driven to broadcast or cancelled) and check the invariants against
 * chain truth (see invariants.ts).
 */
import { parseGwei, type Hex } from 'viem';
import { startCluster, type Cluster } from './cluster.ts';
import { sleep, waitFor, type Proc } from './procs.ts';
import { bitcoinPayer, evmPayer, parseUnits, prng, strangerFlusher, type Prng } from './workload.ts';
import { checkInvariants, type ContractSend, type TipSample } from './invariants.ts';
import { refundDriver } from './refunds.ts';

export interface ScenarioOptions {
  seed: number;
  /** Seconds of workload + faults (default 75). */
  seconds?: number;
  faults?: boolean;
  log?: (line: string) => void;
}

export interface ScenarioResult {
  seed: number;
  ok: boolean;
  violations: string[];
  stats: Record<string, number>;
  logDir: string;
  ms: number;
}

interface InvoiceInfo {
  id: string;
  methods: { method: string; address: string; amount_due: string; decimals: number }[];
  partialOn: string | null;
  /** The ETH deposit address (kept when the invoice leaves the workload: strangers may still flush it). */
  eth: string | null;
}

/**
 * How long the deployment may take to catch up after the workload before the invariants must hold
 * (KASSA_FAULTS_QUIESCE_MS, default 120 s; on 2 cores shared with other jobs a restarted worker alone
 * can take over a minute to start).
 */
const QUIESCE_MS = Number(process.env.KASSA_FAULTS_QUIESCE_MS ?? 120_000);

const DECIMALS: Record<string, number> = { BTC: 8, 'ETH-ethereum': 18, 'USDC-ethereum': 6, 'USDT-ethereum': 6 };

export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const t0 = Date.now();
  const log = o.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const rnd = prng(o.seed);
  const frnd = prng(o.seed ^ 0x5eed);
  const stats: Record<string, number> = {};
  const count = (k: string) => { stats[k] = (stats[k] ?? 0) + 1; };
  const c: Cluster = await startCluster({ workers: 2, say: (l) => log(`  ${l}`) });
  const btc = bitcoinPayer(c.btc);
  const evm = evmPayer(c.evm.url, c.evm.publicClient);
  const nativeSent: Hex[] = [];
  const contractSent: ContractSend[] = [];
  const stranger = strangerFlusher(c.evm.url, c.evm.publicClient, c.evm.factory, [c.evm.usdc, c.evm.usdt]);
  const btcSent: string[] = [];
  const evmRaw: Hex[] = [];
  const invoices: InvoiceInfo[] = [];
  const tipSamples: TipSample[] = [];
  const paused = { bitcoin: false, ethereum: false };
  let snapshot: { id: string; height: number; depth: number } | null = null;
  let stop = false;
  /** Restarts a process killed with -9 (the fault loop's and the refund driver's kills share it). */
  const restart = async (p: Proc) => { if (!p.alive()) await p.restart(); };
  const refunds = refundDriver(c, { count, log, paused, restart });
  try {
    await evm.fund(c.evm.usdc, 500_000_000_000n);
    await evm.fund(c.evm.usdt, 500_000_000_000n);
    const sender = await evm.deploySender();

    /** Native coin to an EVM deposit address: a plain transfer, or (internal) from a contract. */
    const sendEth = async (to: Hex, wei: bigint, viaContract: boolean, fees: { maxPriorityFeePerGas?: bigint } = {}) => {
      if (viaContract) {
        const r = await evm.sendViaContract(sender, to, wei, fees);
        contractSent.push({ hash: r.hash, to: to.toLowerCase() });
        count('pay_eth_via_contract');
        return r;
      }
      const r = await evm.sendNative(to, wei, fees);
      nativeSent.push(r.hash);
      return r;
    };
    /** A stranger (no Kassa key) flushes an invoice's forwarder to the treasury bound into its address. */
    const treasuryOf = async (invoiceId: string) =>
      (await c.sql<{ treasury: string }[]>`select derivation->>'treasury' as treasury from deposit_addresses where invoice_id = ${invoiceId} and chain = 'ethereum'`)[0]?.treasury as Hex | undefined;
    const flushByStranger = async (r: Prng, why: string, invoice?: InvoiceInfo, fees: { maxPriorityFeePerGas?: bigint } = {}) => {
      const withEth = invoices.filter((i) => i.eth);
      const inv = invoice ?? (withEth.length ? r.pick(withEth) : undefined);
      if (!inv?.eth) return null;
      const treasury = await treasuryOf(inv.id);
      if (!treasury) { count('stranger_flush_no_treasury'); return null; }
      const hash = await stranger.flush(r.int(0, 4), treasury, inv.id, fees);
      count(`stranger_flush_${why}`);
      return hash;
    };

    const pay = async (inv: InvoiceInfo, method: string, units: bigint, viaContract = false) => {
      const m = inv.methods.find((x) => x.method === method)!;
      if (method === 'BTC') {
        if (paused.bitcoin) return;
        btcSent.push(await btc.send(m.address, units));
      } else {
        if (paused.ethereum) return;
        const r = method === 'ETH-ethereum'
          ? await sendEth(m.address as Hex, units, viaContract)
          : await evm.sendToken(method === 'USDC-ethereum' ? c.evm.usdc : c.evm.usdt, m.address as Hex, units);
        evmRaw.push(r.raw);
      }
      count(`pay:${method}`);
    };
    const due = (inv: InvoiceInfo, method: string) => parseUnits(inv.methods.find((x) => x.method === method)!.amount_due, DECIMALS[method]!);

    const step = async (r: Prng) => {
      const action = r.weighted({ create: 4, exact: 4, partial: 2, topup: 2, over: 1.5, late: 1, dup: 1, replace: 1, mine: 2, btcReorg: 0.7, evmSnap: 0.7, skewedBlock: 1, marks: 0.7, flush: 1.5, flushSameBlock: 0.6, refund: 2.5, refundStep: 5 });
      const open = invoices.filter((i) => i.methods.length > 0);
      switch (action) {
        case 'create': {
          const res = await c.api$('POST', '/v1/invoices', {
            amount: `${r.int(5, 300)}.${String(r.int(0, 99)).padStart(2, '0')}`, currency: 'USD',
            speed_policy: r.pick(['high', 'medium', 'medium', 'low_medium']),
          });
          if (res.status !== 201) { count(`api_error:${res.status}`); return; }
          const methods = res.body.payment_methods.map((m: any) => ({ method: m.method, address: m.address, amount_due: m.amount_due, decimals: DECIMALS[m.method] ?? 0 }));
          invoices.push({ id: res.body.id, partialOn: null, methods, eth: methods.find((m: { method: string }) => m.method === 'ETH-ethereum')?.address ?? null });
          count('invoices');
          return;
        }
        case 'exact': case 'over': case 'partial': case 'late': {
          if (open.length === 0) return;
          const inv = r.pick(open);
          const method = r.pick(inv.methods.map((m) => m.method));
          const d = due(inv, method);
          if (action === 'late') {
            await c.sql`update invoices set expires_at = now() - interval '2 seconds' where id = ${inv.id} and status = 'new'`;
            count('late');
          }
          const units = action === 'over' ? d + d / BigInt(r.int(5, 20)) : action === 'partial' ? (d * BigInt(r.int(30, 70))) / 100n : d;
          if (action === 'partial') inv.partialOn = method;
          await pay(inv, method, units > 0n ? units : 1n, method === 'ETH-ethereum' && r.chance(0.35));
          return;
        }
        case 'topup': {
          const inv = open.find((i) => i.partialOn);
          if (!inv) return;
          const method = inv.partialOn!;
          inv.partialOn = null;
          await pay(inv, method, due(inv, method) / 2n + 1n, method === 'ETH-ethereum' && r.chance(0.5));
          count('topup');
          return;
        }
        case 'dup': {
          if (r.chance(0.5) && btcSent.length && !paused.bitcoin) {
            const txid = r.pick(btcSent);
            const hex = await btc.rawOf(txid).catch(() => null);
            if (hex) await btc.rebroadcast(hex).catch(() => {});
          } else if (evmRaw.length && !paused.ethereum) {
            await evm.rebroadcast(r.pick(evmRaw)).catch(() => {});
          }
          count('dup');
          return;
        }
        case 'replace': {
          if (open.length === 0 || paused.bitcoin) return;
          const inv = r.pick(open);
          const m = inv.methods.find((x) => x.method === 'BTC');
          if (!m) return;
          const txid = await btc.send(m.address, due(inv, 'BTC'));
          btcSent.push(txid);
          await sleep(r.int(0, 400));
          await btc.replace(txid).then((t) => btcSent.push(t), () => count('replace_failed'));
          count('replace');
          return;
        }
        case 'mine': {
          if (r.chance(0.6) && !paused.bitcoin) { await btc.mine(1); count('btc_blocks'); }
          else if (!paused.ethereum) { await evm.rpc('evm_mine'); count('evm_blocks'); }
          return;
        }
        case 'btcReorg': {
          if (paused.bitcoin) return;
          const h = await btc.height();
          const depth = Math.min(r.int(1, 6), h - c.start.bitcoin - 1);
          if (depth < 1) return;
          await btc.invalidate(await btc.hashAt(h - depth + 1));
          await btc.mine(depth + 1);
          count(`btc_reorg_${depth}`);
          return;
        }
        case 'skewedBlock': {
          // A block stamped by a miner whose clock is hours off: early or late on Bitcoin (devnet),
          // late on the EVM chain (hardhat only moves time forward; it stays ahead afterwards).
          const hours = r.pick([-5, -3, -2, 2, 3]);
          if (r.chance(0.75) || hours < 0) {
            if (paused.bitcoin) return;
            await c.btc.call('devnet_setblocktimeoffset', [hours * 3600]);
            try { await btc.mine(1); } finally { await c.btc.call('devnet_setblocktimeoffset', [0]); }
            count(`btc_block_${hours > 0 ? 'late' : 'early'}_${Math.abs(hours)}h`);
          } else {
            if (paused.ethereum || (stats['evm_block_late'] ?? 0) >= 2) return;
            const latest = await c.evm.publicClient.getBlock();
            await evm.rpc('evm_setNextBlockTimestamp', [Number(latest.timestamp) + hours * 3600]);
            await evm.rpc('evm_mine');
            count('evm_block_late');
          }
          return;
        }
        case 'marks': {
          // Staff marking by hand, repeatedly (settled → invalid → settled …); the invoice then leaves the workload.
          if (invoices.length === 0) return;
          const inv = r.pick(invoices);
          const n = r.int(1, 4);
          let status = r.pick(['settled', 'invalid'] as const);
          for (let i = 0; i < n; i++) {
            const res = await c.api$('POST', `/v1/invoices/${inv.id}/mark`, { status, reason: 'fault harness' });
            count(`mark_${res.status}`);
            if (res.status >= 500) throw new Error(`mark answered ${res.status}: ${JSON.stringify(res.body)}`);
            if (r.chance(0.7)) status = status === 'settled' ? 'invalid' : 'settled';
          }
          inv.methods = [];
          count('marked_invoices');
          return;
        }
        case 'evmSnap': {
          if (paused.ethereum || snapshot) return;
          const id = (await evm.rpc('evm_snapshot')) as string;
          snapshot = { id, height: Number(await c.evm.publicClient.getBlockNumber()), depth: r.int(1, 6) };
          // A flush on the branch about to be dropped: its Flushed log must leave evm_outflows.
          if (r.chance(0.5)) await flushByStranger(r, 'before_reorg');
          return;
        }
        case 'flush': {
          if (paused.ethereum) return;
          await flushByStranger(r, 'between_payments');
          return;
        }
        case 'refund': {
          // EVM refunds only while no EVM reorg is pending: a refund of a payment the reorg then
          // removes would be a refund of money that never arrived (Kassa checks at creation).
          await refunds.create(r, invoices.map((i) => i.id), snapshot === null);
          return;
        }
        case 'refundStep': {
          await refunds.advance(r);
          return;
        }
        case 'flushSameBlock': {
          // A payment and a stranger's flush in one block, in a random order (priority fees fix the
          // order inside the block): plain or from a contract, before or after the flush.
          const withEth = open.filter((i) => i.eth);
          if (paused.ethereum || withEth.length === 0) return;
          const inv = r.pick(withEth);
          const wei = (due(inv, 'ETH-ethereum') * BigInt(r.int(20, 60))) / 100n + 1n;
          const viaContract = r.chance(0.6);
          const payFirst = r.chance(0.5);
          const [payFee, flushFee] = payFirst ? [parseGwei('3'), parseGwei('2')] : [parseGwei('2'), parseGwei('3')];
          await evm.rpc('evm_setAutomine', [false]);
          try {
            await sendEth(inv.eth as Hex, wei, viaContract, { maxPriorityFeePerGas: payFee });
            await flushByStranger(r, 'same_block', inv, { maxPriorityFeePerGas: flushFee });
            await evm.rpc('evm_mine');
          } finally {
            // Never leave the node without automine (a paused node answers late): retry.
            for (let i = 0; ; i++) {
              try { await evm.rpc('evm_setAutomine', [true]); break; } catch (err) { if (i >= 5) throw err; await sleep(1_000); }
            }
          }
          count('pay:ETH-ethereum');
          return;
        }
      }
    };

    const evmReorgCheck = async (r: Prng) => {
      if (!snapshot || paused.ethereum) return;
      const h = Number(await c.evm.publicClient.getBlockNumber());
      if (h - snapshot.height < snapshot.depth) return;
      const depth = h - snapshot.height;
      if (depth > 6) { snapshot = null; return; } // too deep for the 1–6: keep the chain
      await evm.rpc('evm_revert', [snapshot.id]);
      snapshot = null;
      // A different branch: one more block than was dropped (empty, later timestamps).
      await evm.rpc('evm_increaseTime', [r.int(1, 5)]);
      for (let i = 0; i <= depth; i++) await evm.rpc('evm_mine');
      count(`evm_reorg_${depth}`);
    };

    const faultLoop = async () => {
      while (!stop) {
        await sleep(frnd.int(2_500, 6_000));
        if (stop) break;
        const f = frnd.weighted({ kill: 3, redis: 1.5, pg: 2, devnet: 1.5, hardhat: 1.5, receiver: 2 });
        try {
          switch (f) {
            case 'kill': {
              const w = frnd.chance(0.25) ? c.api : frnd.pick(c.workers);
              log(`  fault: kill -9 ${w.name} (pid ${w.pid})`);
              await w.kill9();
              if (frnd.chance(0.5) && !paused.ethereum) {
                await flushByStranger(frnd, 'worker_down').catch((err) => log(`  stranger flush failed: ${(err as Error).message.split('\n')[0]}`));
              }
              await sleep(frnd.int(300, 3_000));
              await restart(w);
              break;
            }
            case 'redis': {
              log('  fault: redis FLUSHALL + restart');
              await c.restartRedis(true, frnd.int(300, 2_000));
              break;
            }
            case 'pg': {
              log('  fault: pg_terminate_backend on the harness database');
              await c.sql.unsafe(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${c.dbName}' and pid <> pg_backend_pid()`).catch(() => {});
              break;
            }
            case 'devnet': case 'hardhat': {
              const p = f === 'devnet' ? c.devnet : c.hardhat;
              const ms = frnd.int(1_000, 5_000);
              log(`  fault: SIGSTOP ${p.name} for ${ms} ms`);
              paused[f === 'devnet' ? 'bitcoin' : 'ethereum'] = true;
              p.pause();
              await sleep(ms);
              p.resume();
              paused[f === 'devnet' ? 'bitcoin' : 'ethereum'] = false;
              break;
            }
            case 'receiver': {
              const mode = frnd.chance(0.5) ? '503' : 'reset';
              const ms = frnd.int(1_000, 6_000);
              log(`  fault: webhook receiver ${mode} for ${ms} ms`);
              c.receiver.setMode(mode);
              await sleep(ms);
              c.receiver.setMode('up');
              break;
            }
          }
          count(`fault:${f}`);
        } catch (err) {
          log(`  fault ${f} failed: ${(err as Error).message}`);
        }
      }
    };

    const seconds = o.seconds ?? 75;
    log(`  workload for ${seconds} s${o.faults === false ? ' (no faults)' : ' with faults'}`);
    const faults = o.faults === false ? Promise.resolve() : faultLoop();
    const until = Date.now() + seconds * 1000;
    while (Date.now() < until) {
      try {
        await step(rnd);
        await evmReorgCheck(rnd);
        // The tips the watchers have recorded, with the harness's clock (invariant 8).
        const at = new Date();
        const rows = await c.sql<{ chain: string; tip_height: bigint | null }[]>`select chain, tip_height from chain_state`;
        for (const t of rows) if (t.tip_height !== null) tipSamples.push({ chain: t.chain, height: Number(t.tip_height), at });
      } catch (err) {
        count('workload_error');
        if ((stats['workload_error'] ?? 0) <= 5) log(`  workload error (tolerated): ${(err as Error).message.split('\n')[0]}`);
      }
      await sleep(rnd.int(50, 400));
    }
    stop = true;
    await faults;

    // Quiesce: everything up, mine confirmations, wait for the workers and the webhooks.
    log('  quiesce');
    c.devnet.resume(); c.hardhat.resume(); c.receiver.setMode('up');
    // A Kassa process that is down now exited on its own (the fault loop restarts what it kills):
    // a violation, named with its last error line; it is restarted so the other invariants still run.
    const crashed: string[] = [];
    /** Restarts what is down (each one a violation) and waits until the API answers. */
    const upAgain = async (when: string) => {
      for (const p of [c.api, ...c.workers]) {
        if (p.alive()) continue;
        const lines = p.tail(4000).split('\n').filter((l) => l.trim() && !l.startsWith('===='));
        const last = lines.filter((l) => /Error|error/.test(l)).slice(-2).join(' | ') || lines.slice(-1).join('');
        crashed.push(`${p.name} exited on its own ${when} (${p.logFile}): ${last || 'no output'}`);
        await p.restart();
      }
      await waitFor('API /health after restart', 180_000, async () => (await fetch(`${c.apiUrl}/health`, { signal: AbortSignal.timeout(2000) })).status > 0);
    };
    await upAgain('during the workload');
    // Every refund to broadcast (or cancelled where Kassa refuses to go on), as the merchant would.
    await refunds.finish(Math.min(QUIESCE_MS / 2, 90_000));
    await upAgain('while the refunds were finished');
    // After the last payment: strangers flush a few deposit addresses once more.
    for (let i = rnd.int(1, 3); i > 0; i--) await flushByStranger(rnd, 'after_payments');
    await btc.mine(7);
    for (let i = 0; i < 4; i++) await evm.rpc('evm_mine');
    // A refund transaction the tracker sends again after this (lost in a reorg, or recorded by an
    // API killed before it sent it) needs a block: one per round while a Bitcoin refund is broadcast.
    const beforeRound = async () => {
      const [b] = await c.sql<{ n: number }[]>`select count(*)::int as n from refunds where chain = 'bitcoin' and status = 'broadcast'`;
      if (b!.n > 0) { await btc.mine(1); count('quiesce_btc_blocks_for_refunds'); }
    };
    const v = [...crashed, ...refunds.violations, ...await checkInvariants(c, { nativeSent, contractSent, quiesceMs: QUIESCE_MS, log, tipSamples, stats, beforeRound })];
    return { seed: o.seed, ok: v.length === 0, violations: v, stats, logDir: c.dir, ms: Date.now() - t0 };
  } finally {
    stop = true;
    await c.close();
  }
}
