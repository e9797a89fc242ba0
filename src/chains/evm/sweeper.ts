/**
 * The EVM sweeper: for settled invoices, calls `ForwarderFactory.deployAndFlush(treasury,
 * invoiceSalt, tokens)`, which deploys the invoice's forwarder if needed and moves its native coin
 * and configured tokens to the treasury bound into the address. The key only pays gas: it can
 * never redirect funds (the forwarder pays only its treasury).
 *
 * Sends are serialized per sweeper (one key): the nonce is tracked locally from
 * `eth_getTransactionCount(pending)` and re-read after a nonce error. Every transaction is
 * recorded in `evm_sweeps` (status, block, amounts read from Flushed/TokensFlushed events).
 *
 * Anyone may flush a forwarder (docs/evm.md, "Flushes, whoever calls them"), so before sending,
 * the forwarder's native and token balances are read: when all are zero (a stranger or the
 * merchant already flushed it) no transaction is sent (no gas spent for nothing) and the check is
 * recorded as a sweep without a transaction (see `isEmpty`).
 *
 * `sweepRun` (the worker's job, every minute) applies the chain's sweep policy (docs/evm.md, "Sweep
 * policy"): a forwarder holding less than it is worth sweeping at the current gas price is skipped
 * as dust (reported, looked at again after `recheck_minutes` or a new payment); forwarders that are
 * already deployed are flushed `batch_size` at a time with `ForwarderFactory.flushMany`, one
 * transaction per batch; a forwarder not yet deployed needs its own `deployAndFlush`.
 */
import { decodeEventLog, erc20Abi, getAddress, type Address, type Hex, type PublicClient } from 'viem';
import { DEFAULT_SWEEP_POLICY, type EvmChainConfig } from '../../config.ts';
import type { Sql } from '../../db/client.ts';
import type { Logger } from '../../logger.ts';
import { KassaError, UpstreamError, notFound } from '../../errors.ts';
import type { AccountWalletClient } from './deploy.ts';
import { forwarderAbi, forwarderFactoryAbi } from './artifacts.ts';
import { invoiceSaltFor, predictForwarderAddress } from './forwarder.ts';

export interface SweepResult {
  invoiceId: string;
  forwarder: Address;
  treasury: Address;
  txHash: Hex;
  status: 'confirmed' | 'failed';
  blockNumber: number | null;
  nativeAmount: bigint;
  /** token (lowercase) → amount. */
  tokenAmounts: Record<string, bigint>;
  /** Forwarders flushed by the same transaction (1 unless batched). */
  batchSize: number;
}

/** A forwarder the policy left alone this run: what it holds is worth less than the sweep. */
export interface DustSkip {
  invoiceId: string;
  forwarder: Address;
  native: bigint;
  /** token (lowercase) → balance. */
  tokens: Record<string, bigint>;
  /** Estimated cost of sweeping it now: gas price × estimated gas, native base units. */
  gasCost: bigint;
}

export interface SweepRun {
  swept: SweepResult[];
  dust: DustSkip[];
  /** Sweep transactions sent this run. */
  transactions: number;
}

/** The sweeper key's native balance against the chain's `sweep.low_balance`. */
export interface SweeperKeyState {
  address: Address;
  balance: bigint;
  lowBalance: bigint;
  low: boolean;
}

export interface Sweeper {
  /** Sweeps one settled invoice's forwarder on this chain, whatever it holds (no dust policy). Null when it is empty. */
  sweepInvoice(invoiceId: string, opts?: { force?: boolean }): Promise<SweepResult | null>;
  /** `sweepRun(limit).swept`. */
  sweepSettled(limit?: number): Promise<SweepResult[]>;
  /**
   * Up to `limit` settled invoices with confirmed payments on this chain and no sweep since their
   * last payment: skips the empty ones and the dust, batches the deployed forwarders, sweeps the rest.
   */
  sweepRun(limit?: number): Promise<SweepRun>;
  /** Forwarders currently skipped as dust (until their recheck time or a new payment). */
  dustPending(): number;
  /** Reads the sweeper key's native balance. */
  keyState(): Promise<SweeperKeyState>;
}

export interface SweeperOptions {
  chain: string;
  cfg: EvmChainConfig;
  walletClient: AccountWalletClient;
  publicClient: PublicClient;
  sql: Sql;
  logger: Logger;
  /** Send attempts per sweep (nonce errors, transient RPC errors). Default 3. */
  attempts?: number;
}

/** The chain's sweep policy, with token minimums keyed by token address (lowercase). */
export interface SweepPolicy {
  minGasMultiple: bigint;
  tokenMinimums: Map<string, bigint>;
  batchSize: number;
  lowBalance: bigint;
  recheckMs: number;
}

export function sweepPolicyOf(cfg: EvmChainConfig): SweepPolicy {
  const sweep = cfg.sweep ?? DEFAULT_SWEEP_POLICY;
  const tokenMinimums = new Map<string, bigint>();
  for (const t of cfg.tokens) {
    const min = sweep.token_minimums[t.symbol];
    if (min !== undefined) tokenMinimums.set(t.address.toLowerCase(), BigInt(min));
  }
  return {
    minGasMultiple: BigInt(sweep.min_gas_multiple), tokenMinimums, batchSize: sweep.batch_size,
    lowBalance: BigInt(sweep.low_balance), recheckMs: sweep.recheck_minutes * 60_000,
  };
}

/**
 * The sweep rule (docs/evm.md, "Sweep policy"): a forwarder is worth sweeping when its native
 * balance is at least `min_gas_multiple` × the sweep's gas cost (gas price × estimated gas), or when
 * it holds a non-zero balance of some token at or above that token's minimum (no minimum: any).
 */
export function worthSweeping(b: { native: bigint; tokens: Map<string, bigint> }, gasCost: bigint, policy: SweepPolicy): boolean {
  if (b.native > 0n && b.native >= policy.minGasMultiple * gasCost) return true;
  for (const [token, balance] of b.tokens) {
    if (balance > 0n && balance >= (policy.tokenMinimums.get(token) ?? 0n)) return true;
  }
  return false;
}

const NONCE_ERROR = /nonce|replacement transaction underpriced|already known/i;

interface Target {
  invoiceId: string;
  forwarder: Address;
  treasury: Address;
  invoiceSalt: Hex;
}

type Call =
  | { functionName: 'deployAndFlush'; args: readonly [Address, Hex, readonly Address[]] }
  | { functionName: 'flushMany'; args: readonly [readonly Address[], readonly Address[]] };

export function createSweeper(o: SweeperOptions): Sweeper {
  const { chain, cfg, walletClient, publicClient, sql } = o;
  const log = o.logger.child({ chain, component: 'evm-sweeper' });
  const account = walletClient.account;
  if (!cfg.factory) {
    throw new KassaError('chain_not_deployed', `Chain '${chain}' has no forwarder factory configured (kassa evm deploy).`, { status: 422, retryable: false });
  }
  const factory = getAddress(cfg.factory);
  const tokens = cfg.tokens.map((t) => getAddress(t.address));
  const policy = sweepPolicyOf(cfg);
  let implementation: Address | null = cfg.implementation ? getAddress(cfg.implementation) : null;
  let nonce: number | null = null;
  let queue: Promise<unknown> = Promise.resolve();
  /** Invoices skipped as dust → when (database time) and until when. */
  const dust = new Map<string, { checkedAt: Date; until: number }>();

  /** Serializes everything that uses the key's nonce. */
  function serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn, fn);
    queue = run.catch(() => {});
    return run;
  }

  async function pendingNonce(): Promise<number> {
    return publicClient.getTransactionCount({ address: account.address, blockTag: 'pending' });
  }

  async function send(call: Call): Promise<Hex> {
    const attempts = o.attempts ?? 3;
    let lastErr: unknown;
    for (let i = 0; i < attempts; i++) {
      try {
        if (nonce === null) nonce = await pendingNonce();
        const hash = await walletClient.writeContract({
          address: factory, abi: forwarderFactoryAbi, ...call, account, chain: walletClient.chain ?? null, nonce,
        } as Parameters<typeof walletClient.writeContract>[0]);
        nonce++;
        return hash;
      } catch (err) {
        lastErr = err;
        const msg = err instanceof Error ? err.message : String(err);
        nonce = null; // re-read the pending nonce before the next try
        if (!NONCE_ERROR.test(msg) && /revert/i.test(msg)) break; // a revert in simulation: retrying cannot help
        log.warn({ attempt: i + 1, err: msg.split('\n')[0] }, 'sweep send failed, retrying');
        await new Promise((r) => setTimeout(r, 200 * (i + 1)));
      }
    }
    const msg = lastErr instanceof Error ? lastErr.message.split('\n')[0]! : String(lastErr);
    throw new UpstreamError('evm_sweep_send_failed', `${chain}: could not send the sweep transaction: ${msg}`, { cause: lastErr });
  }

  /** The invoice's forwarder and the treasury bound into it; refuses unless settled (or forced). */
  async function target(invoiceId: string, force: boolean): Promise<Target> {
    const [dep] = await sql<{ address: string; derivation: { treasury?: string } | null; status: string; merchant_id: string }[]>`
      select d.address, d.derivation, i.status, i.merchant_id from deposit_addresses d join invoices i on i.id = d.invoice_id
      where d.invoice_id = ${invoiceId} and d.chain = ${chain}`;
    if (!dep) throw notFound('EVM deposit address for invoice', invoiceId, 'invoice');
    if (dep.status !== 'settled' && !force) {
      throw new KassaError('invoice_not_settled', `Invoice ${invoiceId} is ${dep.status}; only settled invoices are swept (use force to sweep anyway).`, { status: 409, retryable: false });
    }
    // The treasury bound into the address: recorded at creation, else the merchant's current one.
    let treasuryRaw = dep.derivation?.treasury;
    if (!treasuryRaw) {
      const [s] = await sql<{ treasury: string }[]>`select treasury from merchant_evm_settings where merchant_id = ${dep.merchant_id} and chain = ${chain}`;
      treasuryRaw = s?.treasury;
    }
    if (!treasuryRaw) throw new KassaError('treasury_unknown', `No treasury is known for invoice ${invoiceId} on ${chain}.`, { status: 409, retryable: false });
    const treasury = getAddress(treasuryRaw);
    const invoiceSalt = invoiceSaltFor(invoiceId);
    implementation ??= getAddress(await publicClient.readContract({ address: factory, abi: forwarderFactoryAbi, functionName: 'IMPLEMENTATION' }));
    const forwarder = predictForwarderAddress({ factory, implementation, treasury, invoiceSalt });
    if (forwarder.toLowerCase() !== dep.address.toLowerCase()) {
      throw new KassaError('sweep_address_mismatch',
        `Invoice ${invoiceId}: the deposit address ${dep.address} is not the forwarder of treasury ${treasury} (${forwarder}); not sweeping.`, { status: 409, retryable: false });
    }
    return { invoiceId, forwarder, treasury, invoiceSalt };
  }

  /** Native and token balances of the forwarder at one block, with the database time taken before reading them. */
  async function balances(forwarder: Address): Promise<{ native: bigint; tokens: Map<string, bigint>; blockNumber: bigint; checkedAt: Date }> {
    const [now] = await sql<{ checked_at: Date }[]>`select now() as checked_at`;
    const blockNumber = await publicClient.getBlockNumber();
    const [native, ...tokenBalances] = await Promise.all([
      publicClient.getBalance({ address: forwarder, blockNumber }),
      ...tokens.map((token) => publicClient.readContract({ address: token, abi: erc20Abi, functionName: 'balanceOf', args: [forwarder], blockNumber })),
    ]);
    return { native, tokens: new Map(tokens.map((t, i) => [t.toLowerCase(), tokenBalances[i]!])), blockNumber, checkedAt: now!.checked_at };
  }

  /**
   * Records an empty forwarder (e.g. someone else flushed it) as a `confirmed` sweep with no
   * transaction (`tx_hash` null, amounts 0), stamped with the database time taken before the
   * balances were read: `sweepRun` skips the invoice until a payment recorded after that time.
   */
  async function recordEmpty(t: Target, blockNumber: bigint, checkedAt: Date): Promise<void> {
    await sql`
      insert into evm_sweeps (invoice_id, chain, forwarder, treasury, tx_hash, status, block_number, created_at, updated_at)
      values (${t.invoiceId}, ${chain}, ${t.forwarder.toLowerCase()}, ${t.treasury.toLowerCase()}, null, 'confirmed', ${Number(blockNumber)}, ${checkedAt}, ${checkedAt})`;
    log.info({ invoice_id: t.invoiceId, forwarder: t.forwarder, block: Number(blockNumber) }, 'nothing to sweep: the forwarder is already empty');
  }

  /** Sends one transaction for `targets` (one `deployAndFlush`, or `flushMany` for several deployed forwarders), records and waits for it. */
  async function sweepTargets(targets: Target[]): Promise<SweepResult[]> {
    const call: Call = targets.length === 1
      ? { functionName: 'deployAndFlush', args: [targets[0]!.treasury, targets[0]!.invoiceSalt, tokens] }
      : { functionName: 'flushMany', args: [targets.map((t) => t.forwarder), tokens] };
    const hash = await send(call);
    const ids = new Map<string, bigint>();
    for (const t of targets) {
      const [row] = await sql<{ id: bigint }[]>`
        insert into evm_sweeps (invoice_id, chain, forwarder, treasury, tx_hash, status)
        values (${t.invoiceId}, ${chain}, ${t.forwarder.toLowerCase()}, ${t.treasury.toLowerCase()}, ${hash}, 'sent') returning id`;
      ids.set(t.invoiceId, row!.id);
    }
    log.info({ invoices: targets.map((t) => t.invoiceId), tx_hash: hash, call: call.functionName }, 'sweep sent');
    const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 120_000 });
    const moved = new Map<string, { native: bigint; tokens: Record<string, bigint> }>(targets.map((t) => [t.forwarder.toLowerCase(), { native: 0n, tokens: {} }]));
    for (const l of receipt.logs) {
      const m = moved.get(l.address.toLowerCase());
      if (!m) continue;
      try {
        const ev = decodeEventLog({ abi: forwarderAbi, data: l.data, topics: l.topics });
        if (ev.eventName === 'Flushed') m.native += ev.args.amount;
        else if (ev.eventName === 'TokensFlushed') {
          const tk = ev.args.token.toLowerCase();
          m.tokens[tk] = (m.tokens[tk] ?? 0n) + ev.args.amount;
        }
      } catch {
        // not an event of the forwarder ABI
      }
    }
    const status = receipt.status === 'success' ? 'confirmed' : 'failed';
    const out: SweepResult[] = [];
    for (const t of targets) {
      const m = moved.get(t.forwarder.toLowerCase())!;
      await sql`
        update evm_sweeps set status = ${status}, block_number = ${Number(receipt.blockNumber)}, block_hash = ${receipt.blockHash.toLowerCase()},
          native_amount = ${m.native}, token_amounts = ${sql.json(Object.fromEntries(Object.entries(m.tokens).map(([k, v]) => [k, v.toString()])))},
          error = ${status === 'failed' ? 'transaction reverted' : null}, updated_at = now()
        where id = ${ids.get(t.invoiceId)!}`;
      out.push({
        invoiceId: t.invoiceId, forwarder: t.forwarder, treasury: t.treasury, txHash: hash, status, blockNumber: Number(receipt.blockNumber),
        nativeAmount: m.native, tokenAmounts: m.tokens, batchSize: targets.length,
      });
    }
    log.info({ invoices: targets.length, tx_hash: hash, status, gas_used: receipt.gasUsed.toString() }, 'sweep mined');
    return out;
  }

  async function sweepInvoice(invoiceId: string, opts: { force?: boolean } = {}): Promise<SweepResult | null> {
    const t = await target(invoiceId, Boolean(opts.force));
    return serialized(async () => {
      const b = await balances(t.forwarder);
      if (b.native === 0n && [...b.tokens.values()].every((x) => x === 0n)) {
        await recordEmpty(t, b.blockNumber, b.checkedAt);
        return null;
      }
      return (await sweepTargets([t]))[0]!;
    });
  }

  async function sweepRun(limit = 50): Promise<SweepRun> {
    const nowMs = Date.now();
    for (const [id, d] of dust) if (d.until <= nowMs) dust.delete(id);
    const skipped = [...dust].map(([id, d]) => ({ id, at: d.checkedAt.toISOString() }));
    const rows = await sql<{ invoice_id: string }[]>`
      select i.id as invoice_id from invoices i
      where i.status = 'settled'
        and exists (select 1 from payments p where p.invoice_id = i.id and p.chain = ${chain} and p.status = 'confirmed')
        and not exists (
          select 1 from evm_sweeps s where s.invoice_id = i.id and s.chain = ${chain}
            and (s.status = 'confirmed' and s.updated_at >= (select max(p.updated_at) from payments p where p.invoice_id = i.id and p.chain = ${chain})
                 or s.status = 'sent' and s.created_at > now() - interval '30 minutes'))
        -- skipped as dust, and no payment since
        and not exists (
          select 1 from jsonb_to_recordset(${sql.json(skipped)}::jsonb) as k(id text, at timestamptz)
          where k.id = i.id and k.at >= (select max(p.updated_at) from payments p where p.invoice_id = i.id and p.chain = ${chain}))
      order by i.settled_at nulls last, i.seq
      limit ${limit}`;
    const run: SweepRun = { swept: [], dust: [], transactions: 0 };
    const warn = (invoiceId: string, err: unknown) =>
      log.warn({ invoice_id: invoiceId, err: err instanceof Error ? err.message.split('\n')[0] : String(err) }, 'sweep failed');
    if (rows.length === 0) return run; // nothing to sweep: no node request
    await serialized(async () => {
      const gasPrice = await publicClient.getGasPrice();
      const deployed: Target[] = [];
      const fresh: Target[] = [];
      for (const r of rows) {
        try {
          const t = await target(r.invoice_id, false);
          const b = await balances(t.forwarder);
          if (b.native === 0n && [...b.tokens.values()].every((x) => x === 0n)) {
            await recordEmpty(t, b.blockNumber, b.checkedAt);
            continue;
          }
          // What sweeping this forwarder alone would cost now (a batch costs less per forwarder).
          const gas = await publicClient.estimateContractGas({
            address: factory, abi: forwarderFactoryAbi, functionName: 'deployAndFlush', args: [t.treasury, t.invoiceSalt, tokens], account,
          });
          const gasCost = gasPrice * gas;
          if (!worthSweeping(b, gasCost, policy)) {
            dust.set(t.invoiceId, { checkedAt: b.checkedAt, until: Date.now() + policy.recheckMs });
            const skip: DustSkip = { invoiceId: t.invoiceId, forwarder: t.forwarder, native: b.native, tokens: Object.fromEntries(b.tokens), gasCost };
            run.dust.push(skip);
            log.info({
              invoice_id: t.invoiceId, forwarder: t.forwarder, native: b.native.toString(), gas_cost: gasCost.toString(),
              tokens: Object.fromEntries([...b.tokens].filter(([, v]) => v > 0n).map(([k, v]) => [k, v.toString()])),
            }, 'not swept: worth less than the sweep (dust)');
            continue;
          }
          dust.delete(t.invoiceId);
          const code = await publicClient.getCode({ address: t.forwarder });
          (code && code !== '0x' ? deployed : fresh).push(t);
        } catch (err) {
          warn(r.invoice_id, err);
        }
      }
      for (const t of fresh) {
        try {
          run.transactions++;
          run.swept.push(...(await sweepTargets([t])));
        } catch (err) {
          warn(t.invoiceId, err);
        }
      }
      for (let i = 0; i < deployed.length; i += policy.batchSize) {
        const batch = deployed.slice(i, i + policy.batchSize);
        try {
          run.transactions++;
          run.swept.push(...(await sweepTargets(batch)));
        } catch (err) {
          if (batch.length === 1) {
            warn(batch[0]!.invoiceId, err);
            continue;
          }
          // One forwarder that cannot be flushed fails the whole batch: try them one by one.
          log.warn({ invoices: batch.length, err: err instanceof Error ? err.message.split('\n')[0] : String(err) }, 'batch sweep failed; sweeping one by one');
          for (const t of batch) {
            try {
              run.transactions++;
              run.swept.push(...(await sweepTargets([t])));
            } catch (e) {
              warn(t.invoiceId, e);
            }
          }
        }
      }
    });
    return run;
  }

  async function keyState(): Promise<SweeperKeyState> {
    const balance = await publicClient.getBalance({ address: account.address });
    return { address: account.address, balance, lowBalance: policy.lowBalance, low: balance < policy.lowBalance };
  }

  return {
    sweepInvoice,
    sweepRun,
    async sweepSettled(limit = 50) {
      return (await sweepRun(limit)).swept;
    },
    dustPending: () => dust.size,
    keyState,
  };
}
