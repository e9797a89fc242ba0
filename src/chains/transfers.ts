/**
 * The merchant-signed transfers of each configured chain, by its `type` (src/chains/transfer.ts):
 * like src/chains/registry.ts for the adapters, this is where a chain's type is looked at, so the
 * refund and payout services do not branch on it. Each chain's implementation is built once per
 * set (its node clients are reused by every tracking pass).
 */
import { ConfigError, type ChainConfig } from '../config.ts';
import type { Db, Sql } from '../db/client.ts';
import { unprocessable, UpstreamError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { bitcoinTransfers } from './bitcoin/transfer.ts';
import type { BitcoinRpcClient } from './bitcoin/rpc.ts';
import { evmTransfers } from './evm/transfer.ts';
import type { MerchantSignedTransfers, PreparedTransfer, TransferObservation, TransferRecord, TransferTarget } from './transfer.ts';

export type * from './transfer.ts';

export interface TransferFamilies {
  /** The chain's transfers; 422 `chain_unknown` for a chain no longer configured. */
  of(chain: string): MerchantSignedTransfers;
}

export function createTransferFamilies(deps: {
  sql: Sql;
  chains: Record<string, ChainConfig>;
  /** The Bitcoin node for `chain` (tests may pass their own); default: the chain's configured RPC. */
  bitcoinRpc?: ((chain: string) => BitcoinRpcClient) | undefined;
}): TransferFamilies {
  const built = new Map<string, MerchantSignedTransfers>();
  function build(chain: string, cfg: ChainConfig): MerchantSignedTransfers {
    switch (cfg.type) {
      case 'bitcoin':
        return bitcoinTransfers(chain, cfg, { sql: deps.sql, ...(deps.bitcoinRpc ? { rpc: deps.bitcoinRpc(chain) } : {}) });
      case 'evm':
        return evmTransfers(chain, cfg, { sql: deps.sql });
      default: {
        const unknown: never = cfg; // every type has its case (a compile error otherwise)
        throw new ConfigError(`chain ${chain} has type ${JSON.stringify((unknown as { type?: unknown }).type)}, which is not a chain family Kassa knows (bitcoin, evm).`);
      }
    }
  }
  return {
    of(chain) {
      let t = built.get(chain);
      if (!t) {
        const cfg = deps.chains[chain];
        if (!cfg) throw unprocessable('chain_unknown', `Chain "${chain}" is not configured on this server.`, 'chain');
        built.set(chain, (t = build(chain, cfg)));
      }
      return t;
    },
  };
}

/** The columns approval stores, ready for an update (`evm_tx` as JSON). */
export function preparedColumns(db: Db, p: PreparedTransfer): Record<string, unknown> {
  const { evm_tx: evmTx, ...rest } = p;
  return evmTx === undefined ? rest : { ...rest, evm_tx: db.json(evmTx) };
}

/** What one tracking pass did. */
export interface TrackResult { completed: number; reorged: number; resent: number; failed: number }

/**
 * One tracking pass over the recorded transfers of a chain (refunds or payouts; the caller reads
 * them: `broadcast`, and `completed` within the last day for reorgs), shared by both services:
 * `broadcast` → `completed` at `required` confirmations, `completed` → `broadcast` when a reorg
 * takes it below that, `failed` when the chain shows a transaction that does not pay what was
 * accepted, and a recorded transaction the node lost is sent again (when Kassa holds it). The moves
 * are the caller's (its states, ledger and events); each returns whether it happened. A node that
 * does not answer (a retryable UpstreamError) delays this chain to the next pass, not the others.
 */
export async function trackTransfers<R extends TransferRecord & { status: string; required: number }>(p: {
  chain: string;
  family: MerchantSignedTransfers;
  rows: R[];
  targetOf: (r: R) => TransferTarget;
  logger: Logger;
  noun: string;
  complete: (r: R, blockNumber: bigint | null) => Promise<boolean>;
  reorg: (r: R, blockNumber: bigint | null) => Promise<boolean>;
  fail: (r: R, reason: string) => Promise<boolean>;
  resend: (r: R) => Promise<void>;
}): Promise<TrackResult> {
  const out: TrackResult = { completed: 0, reorged: 0, resent: 0, failed: 0 };
  if (p.rows.length === 0) return out;
  try {
    const observe = await p.family.startPass();
    for (const r of p.rows) {
      const seen: TransferObservation = await observe(r, p.targetOf(r));
      const required = BigInt(Math.max(1, r.required));
      if (seen.state === 'failed') {
        if (await p.fail(r, seen.reason)) out.failed++;
        p.logger.warn({ [`${p.noun}_id`]: r.id, txid: r.txid, code: seen.code }, `${p.noun} transaction failed its check on chain`);
      } else if (r.status === 'broadcast') {
        if (seen.state === 'missing') {
          if (r.raw_tx !== null) {
            await p.resend(r).catch((err: unknown) => p.logger.warn({ [`${p.noun}_id`]: r.id, err: (err as Error).message }, `${p.noun} re-send failed`));
            out.resent++;
          } else {
            p.logger.warn({ [`${p.noun}_id`]: r.id, txid: r.txid }, `the node does not know the ${p.noun} transaction: send it again from your wallet, or report its replacement`);
          }
        } else if (seen.confirmations >= required && await p.complete(r, seen.blockNumber)) out.completed++;
      } else if ((seen.state === 'missing' || seen.confirmations < required) && await p.reorg(r, seen.state === 'seen' ? seen.blockNumber : null)) {
        out.reorged++;
      }
    }
  } catch (err) {
    if (!(err instanceof UpstreamError) || !err.retryable) throw err;
    p.logger.warn({ chain: p.chain, err: err.message }, `${p.noun} tracking skipped this pass: the node did not answer`);
  }
  if (out.completed || out.reorged || out.resent || out.failed) p.logger.info({ chain: p.chain, ...out }, `${p.noun}s tracked`);
  return out;
}
