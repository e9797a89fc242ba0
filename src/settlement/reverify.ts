/**
 * Re-verification (docs/architecture.md §7): a repeatable job re-checks recently counted payments against the
 * node's best chain — the block is still there and the transaction still pays that address that
 * amount. A payment that fails the check gets `mismatch` set (shown in the reconciliation report)
 * and an `invoice.payment_mismatch` event; one that passes gets `verified_at`.
 *
 * The check itself is the chain family's (`ChainAdapter.reverify`, src/chains/sync/adapter.ts):
 * settlement knows no chain.
 */
import type { Sql } from '../db/client.ts';
import type { Logger } from '../logger.ts';
import { writeEvent } from '../invoices/events.ts';
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

/** A recorded payment to re-check against the node's best chain. */
export interface PaymentToVerify {
  txid: string;
  outputIndex: number;
  address: string;
  amount: bigint;
  blockHash: string;
  blockHeight: number;
  /** The deposit address's output script (Bitcoin), when stored. */
  script: Uint8Array | null;
}

/** Checks one payment: null when the node still shows it as recorded, else what differs. */
export interface PaymentVerifier {
  reverify(p: PaymentToVerify): Promise<string | null>;
}

/** Re-checks a chain's recently counted payments with its family's verifier. */
export async function reverifyPayments(
  deps: { sql: Sql; logger: Logger; chains: Record<string, ChainConfig>; publicUrl: string },
  chain: string,
  verifier: PaymentVerifier,
  opts: { limit?: number; maxAgeMinutes?: number } = {},
): Promise<ReverifyResult> {
  const list = await candidates(deps.sql, chain, opts.limit ?? 200, opts.maxAgeMinutes ?? 60);
  let mismatches = 0;
  for (const p of list) {
    const mismatch = await verifier.reverify({
      txid: p.txid, outputIndex: p.output_index, address: p.address, amount: p.amount, blockHash: p.block_hash,
      blockHeight: Number(p.block_height), script: p.script ? new Uint8Array(p.script) : null,
    });
    if (mismatch) mismatches++;
    await record(deps.sql, p, mismatch, deps.chains, deps.publicUrl);
  }
  if (mismatches) deps.logger.error({ chain, mismatches }, 'payment re-verification found mismatches');
  return { checked: list.length, mismatches };
}
