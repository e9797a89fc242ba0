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
 * recorded as a sweep without a transaction (see `recordEmpty`).
 */
import { decodeEventLog, erc20Abi, getAddress, type Address, type Hex, type PublicClient } from 'viem';
import type { EvmChainConfig } from '../../config.ts';
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
}

export interface Sweeper {
  /** Sweeps one settled invoice's forwarder on this chain. Null when there is nothing to sweep. */
  sweepInvoice(invoiceId: string, opts?: { force?: boolean }): Promise<SweepResult | null>;
  /** Sweeps up to `limit` settled invoices with confirmed payments on this chain and no confirmed sweep yet. */
  sweepSettled(limit?: number): Promise<SweepResult[]>;
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

const NONCE_ERROR = /nonce|replacement transaction underpriced|already known/i;

export function createSweeper(o: SweeperOptions): Sweeper {
  const { chain, cfg, walletClient, publicClient, sql } = o;
  const log = o.logger.child({ chain, component: 'evm-sweeper' });
  const account = walletClient.account;
  if (!cfg.factory) {
    throw new KassaError('chain_not_deployed', `Chain '${chain}' has no forwarder factory configured (kassa evm deploy).`, { status: 422, retryable: false });
  }
  const factory = getAddress(cfg.factory);
  const tokens = cfg.tokens.map((t) => getAddress(t.address));
  let nonce: number | null = null;
  let queue: Promise<unknown> = Promise.resolve();

  /** Serializes everything that uses the key's nonce. */
  function serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn, fn);
    queue = run.catch(() => {});
    return run;
  }

  async function pendingNonce(): Promise<number> {
    return publicClient.getTransactionCount({ address: account.address, blockTag: 'pending' });
  }

  async function send(treasury: Address, invoiceSalt: Hex): Promise<Hex> {
    const attempts = o.attempts ?? 3;
    let lastErr: unknown;
    for (let i = 0; i < attempts; i++) {
      try {
        if (nonce === null) nonce = await pendingNonce();
        const hash = await walletClient.writeContract({
          address: factory, abi: forwarderFactoryAbi, functionName: 'deployAndFlush', args: [treasury, invoiceSalt, tokens],
          account, chain: walletClient.chain ?? null, nonce,
        });
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

  async function sweepInvoice(invoiceId: string, opts: { force?: boolean } = {}): Promise<SweepResult | null> {
    const [dep] = await sql<{ address: string; derivation: { treasury?: string } | null; status: string; merchant_id: string }[]>`
      select d.address, d.derivation, i.status, i.merchant_id from deposit_addresses d join invoices i on i.id = d.invoice_id
      where d.invoice_id = ${invoiceId} and d.chain = ${chain}`;
    if (!dep) throw notFound('EVM deposit address for invoice', invoiceId, 'invoice');
    if (dep.status !== 'settled' && !opts.force) {
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
    const forwarder = predictForwarderAddress({ factory, implementation: getAddress(cfg.implementation ?? (await publicClient.readContract({ address: factory, abi: forwarderFactoryAbi, functionName: 'IMPLEMENTATION' }))), treasury, invoiceSalt });
    if (forwarder.toLowerCase() !== dep.address.toLowerCase()) {
      throw new KassaError('sweep_address_mismatch',
        `Invoice ${invoiceId}: the deposit address ${dep.address} is not the forwarder of treasury ${treasury} (${forwarder}); not sweeping.`, { status: 409, retryable: false });
    }

    return serialized(async () => {
      if (await isEmpty(invoiceId, forwarder, treasury)) return null;
      const hash = await send(treasury, invoiceSalt);
      const [row] = await sql<{ id: bigint }[]>`
        insert into evm_sweeps (invoice_id, chain, forwarder, treasury, tx_hash, status)
        values (${invoiceId}, ${chain}, ${forwarder.toLowerCase()}, ${treasury.toLowerCase()}, ${hash}, 'sent') returning id`;
      log.info({ invoice_id: invoiceId, forwarder, tx_hash: hash }, 'sweep sent');
      const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 120_000 });
      let nativeAmount = 0n;
      const tokenAmounts: Record<string, bigint> = {};
      for (const l of receipt.logs) {
        if (l.address.toLowerCase() !== forwarder.toLowerCase()) continue;
        try {
          const ev = decodeEventLog({ abi: forwarderAbi, data: l.data, topics: l.topics });
          if (ev.eventName === 'Flushed') nativeAmount += ev.args.amount;
          else if (ev.eventName === 'TokensFlushed') {
            const t = ev.args.token.toLowerCase();
            tokenAmounts[t] = (tokenAmounts[t] ?? 0n) + ev.args.amount;
          }
        } catch {
          // not an event of the forwarder ABI
        }
      }
      const status = receipt.status === 'success' ? 'confirmed' : 'failed';
      await sql`
        update evm_sweeps set status = ${status}, block_number = ${Number(receipt.blockNumber)}, block_hash = ${receipt.blockHash.toLowerCase()},
          native_amount = ${nativeAmount}, token_amounts = ${sql.json(Object.fromEntries(Object.entries(tokenAmounts).map(([k, v]) => [k, v.toString()])))},
          error = ${status === 'failed' ? 'transaction reverted' : null}, updated_at = now()
        where id = ${row!.id}`;
      log.info({ invoice_id: invoiceId, tx_hash: hash, status, native_amount: nativeAmount.toString(), tokens: Object.keys(tokenAmounts).length }, 'sweep mined');
      return {
        invoiceId, forwarder, treasury, txHash: hash, status, blockNumber: Number(receipt.blockNumber), nativeAmount, tokenAmounts,
      } satisfies SweepResult;
    });
  }

  /**
   * True when the forwarder holds no native coin and none of the configured tokens (read at one
   * block), e.g. after someone else flushed it. The check is then recorded as a `confirmed` sweep
   * with no transaction (`tx_hash` null, amounts 0), stamped with the database time taken before the
   * balances were read: `sweepSettled` skips the invoice until a payment recorded after that time.
   */
  async function isEmpty(invoiceId: string, forwarder: Address, treasury: Address): Promise<boolean> {
    const [now] = await sql<{ checked_at: Date }[]>`select now() as checked_at`;
    const checkedAt = now!.checked_at;
    const blockNumber = await publicClient.getBlockNumber();
    const [native, ...tokenBalances] = await Promise.all([
      publicClient.getBalance({ address: forwarder, blockNumber }),
      ...tokens.map((token) => publicClient.readContract({ address: token, abi: erc20Abi, functionName: 'balanceOf', args: [forwarder], blockNumber })),
    ]);
    if (native > 0n || tokenBalances.some((b) => b > 0n)) return false;
    await sql`
      insert into evm_sweeps (invoice_id, chain, forwarder, treasury, tx_hash, status, block_number, created_at, updated_at)
      values (${invoiceId}, ${chain}, ${forwarder.toLowerCase()}, ${treasury.toLowerCase()}, null, 'confirmed', ${Number(blockNumber)}, ${checkedAt}, ${checkedAt})`;
    log.info({ invoice_id: invoiceId, forwarder, block: Number(blockNumber) }, 'nothing to sweep: the forwarder is already empty');
    return true;
  }

  async function sweepSettled(limit = 50): Promise<SweepResult[]> {
    const rows = await sql<{ invoice_id: string }[]>`
      select i.id as invoice_id from invoices i
      where i.status = 'settled'
        and exists (select 1 from payments p where p.invoice_id = i.id and p.chain = ${chain} and p.status = 'confirmed')
        and not exists (
          select 1 from evm_sweeps s where s.invoice_id = i.id and s.chain = ${chain}
            and (s.status = 'confirmed' and s.updated_at >= (select max(p.updated_at) from payments p where p.invoice_id = i.id and p.chain = ${chain})
                 or s.status = 'sent' and s.created_at > now() - interval '30 minutes'))
      order by i.settled_at nulls last, i.seq
      limit ${limit}`;
    const out: SweepResult[] = [];
    for (const r of rows) {
      try {
        const res = await sweepInvoice(r.invoice_id);
        if (res) out.push(res);
      } catch (err) {
        log.warn({ invoice_id: r.invoice_id, err: err instanceof Error ? err.message.split('\n')[0] : String(err) }, 'sweep failed');
      }
    }
    return out;
  }

  return { sweepInvoice, sweepSettled };
}
