/**
 * Re-verification (docs/architecture.md §7): a repeatable job re-checks recently counted payments against the
 * node's best chain — the block is still there and the transaction still pays that address that
 * amount. A payment that fails the check gets `mismatch` set (shown in the reconciliation report)
 * and an `invoice.payment_mismatch` event; one that passes gets `verified_at`.
 */
import type { Sql } from '../db/client.ts';
import type { Logger } from '../logger.ts';
import type { BitcoinNodeClient } from '../chains/bitcoin/types.ts';
import { scanTransaction, WatchedScripts } from '../chains/bitcoin/scanner.ts';
import type { PublicClient } from 'viem';
import { parseEventLogs, erc20Abi } from 'viem';
import { writeEvent } from './events.ts';
import { loadInvoice, presentInvoice } from '../invoices/present.ts';
import type { ChainConfig } from '../config.ts';

interface Candidate {
  id: string;
  chain: string;
  method: string;
  invoice_id: string;
  merchant_id: string;
  txid: string;
  output_index: number;
  address: string;
  amount: bigint;
  block_hash: string;
  block_height: bigint;
  script: Buffer | null;
}

/** Confirmed payments not verified in the last `maxAgeMinutes`, newest blocks first. */
async function candidates(sql: Sql, chain: string, limit: number, maxAgeMinutes: number): Promise<Candidate[]> {
  return sql<Candidate[]>`
    select p.id, p.chain, p.method, p.invoice_id, p.merchant_id, p.txid, p.output_index, p.address, p.amount, p.block_hash, p.block_height, d.script
    from payments p left join deposit_addresses d on d.chain = p.chain and d.address = p.address
    where p.chain = ${chain} and p.status = 'confirmed' and p.output_index <> -2
      and (p.verified_at is null or p.verified_at < now() - make_interval(mins => ${maxAgeMinutes}))
    order by p.block_height desc limit ${limit}`;
}

async function record(sql: Sql, p: Candidate, mismatch: string | null, chains: Record<string, ChainConfig>, publicUrl: string): Promise<void> {
  await sql.begin(async (tx) => {
    const [prev] = await tx<{ mismatch: string | null }[]>`select mismatch from payments where id = ${p.id} for update`;
    await tx`update payments set verified_at = now(), mismatch = ${mismatch} where id = ${p.id}`;
    if (mismatch && prev?.mismatch !== mismatch) {
      const { row, methods } = await loadInvoice(tx, p.invoice_id, undefined);
      await writeEvent(tx, {
        merchantId: p.merchant_id, type: 'invoice.payment_mismatch', invoiceId: p.invoice_id,
        object: presentInvoice(row, methods, chains, publicUrl),
        payment: {
          id: p.id, chain: p.chain, txid: p.txid, output_index: p.output_index, method: p.method, status: 'confirmed',
          block_height: Number(p.block_height), mismatch,
        },
      });
    }
  });
}

export interface ReverifyResult {
  checked: number;
  mismatches: number;
}

/** Bitcoin: getblockhash(height) must still be the payment's block; the raw tx must pay the amount. */
export async function reverifyBitcoin(
  deps: { sql: Sql; logger: Logger; chains: Record<string, ChainConfig>; publicUrl: string },
  chain: string,
  client: BitcoinNodeClient,
  opts: { limit?: number; maxAgeMinutes?: number } = {},
): Promise<ReverifyResult> {
  const list = await candidates(deps.sql, chain, opts.limit ?? 200, opts.maxAgeMinutes ?? 60);
  let mismatches = 0;
  for (const p of list) {
    let mismatch: string | null = null;
    const hash = await client.getBlockHash(Number(p.block_height)).catch(() => null);
    if (hash !== p.block_hash) mismatch = `block ${p.block_hash} at height ${p.block_height} is no longer in the node's best chain`;
    else if (p.script) {
      const watched = new WatchedScripts(1);
      watched.add(new Uint8Array(p.script));
      const scan = scanTransaction(await client.getRawTransactionRaw(p.txid), watched);
      const out = scan.matches.find((m) => m.vout === p.output_index);
      if (!out) mismatch = `transaction ${p.txid} has no output ${p.output_index} to ${p.address}`;
      else if (out.value !== p.amount) mismatch = `output ${p.output_index} pays ${out.value} sat, recorded ${p.amount}`;
    }
    if (mismatch) mismatches++;
    await record(deps.sql, p, mismatch, deps.chains, deps.publicUrl);
  }
  if (mismatches) deps.logger.error({ chain, mismatches }, 'payment re-verification found mismatches');
  return { checked: list.length, mismatches };
}

/** EVM: the receipt must be successful in the same block; the transfer (native or Transfer log) must match. */
export async function reverifyEvm(
  deps: { sql: Sql; logger: Logger; chains: Record<string, ChainConfig>; publicUrl: string },
  chain: string,
  client: PublicClient,
  opts: { limit?: number; maxAgeMinutes?: number } = {},
): Promise<ReverifyResult> {
  const list = await candidates(deps.sql, chain, opts.limit ?? 200, opts.maxAgeMinutes ?? 60);
  let mismatches = 0;
  for (const p of list) {
    let mismatch: string | null = null;
    const hash = p.txid as `0x${string}`;
    const receipt = await client.getTransactionReceipt({ hash }).catch(() => null);
    if (!receipt || receipt.blockHash.toLowerCase() !== p.block_hash.toLowerCase()) {
      mismatch = `transaction ${p.txid} is no longer in block ${p.block_hash} of the node's best chain`;
    } else if (receipt.status !== 'success') {
      mismatch = `transaction ${p.txid} reverted`;
    } else if (p.output_index === -1) {
      const tx = await client.getTransaction({ hash });
      if (tx.to?.toLowerCase() !== p.address.toLowerCase() || tx.value !== p.amount) mismatch = `transaction ${p.txid} does not send ${p.amount} wei to ${p.address}`;
    } else {
      const log = parseEventLogs({ abi: erc20Abi, logs: receipt.logs, eventName: 'Transfer' }).find((l) => l.logIndex === p.output_index);
      if (!log || log.args.to.toLowerCase() !== p.address.toLowerCase() || log.args.value !== p.amount) {
        mismatch = `log ${p.output_index} of ${p.txid} is not a Transfer of ${p.amount} to ${p.address}`;
      }
    }
    if (mismatch) mismatches++;
    await record(deps.sql, p, mismatch, deps.chains, deps.publicUrl);
  }
  if (mismatches) deps.logger.error({ chain, mismatches }, 'payment re-verification found mismatches');
  return { checked: list.length, mismatches };
}
