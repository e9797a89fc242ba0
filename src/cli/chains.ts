/**
 * Chain maintenance commands for the `kassa` CLI (listed in src/cli/main.ts, loaded when one of them runs):
 *
 *   kassa chains rewind --chain <key> --height <H> [--json]
 *
 * `chains rewind` is the recovery from `reorg_too_deep` (docs/operations.md): it moves a chain's
 * cursor back to height H, below the fork, the way the watchers' automatic rollback does it —
 * through the settlement service, so payments, ledger, invoice states and events stay consistent:
 *
 * 1. Takes the chain's single-flight lease (`watch:<chain>`, src/chains/single-flight.ts): it never
 *    runs while a worker watches the chain.
 * 2. Reads the node's block at H through the chain's adapter (src/chains/registry.ts) and refuses when H is above Kassa's cursor,
 *    when the node has no block at H, when a block Kassa recorded at or below H (kept block hashes,
 *    blocks of confirmed payments) is not in the node's best chain (H is above the fork), or when a
 *    payment it would reset belongs to an invoice whose monitoring window has ended (the watcher
 *    no longer watches that address, so its rescan could not confirm the payment again).
 * 3. Commits a `reorg` event to H through the settlement entry point (src/settlement/commit.ts),
 *    like the engine's rollback, with the cursor set to the node's block at H — one transaction
 *    that also re-checks the lease. Payments of dropped blocks become `pending` or `reorged` as the
 *    chain's family says (Bitcoin: pending, the rescan re-confirms them or marks them `replaced`;
 *    EVM: reorged). After the commit it publishes the changed invoices and releases the lease.
 *
 * The workers, once started again, rescan from H + 1.
 */
import { printResult, UsageError, type Command } from './util.ts';
import { adminConfig as config } from './context.ts';
import { createLogger } from '../logger.ts';
import { createDeps } from '../deps.ts';
import { prepareDatabase } from '../db/prepare.ts';
import type { ChainConfig } from '../config.ts';
import type { Sql } from '../db/client.ts';
import { KassaError } from '../errors.ts';
import type { SettlementService } from '../settlement/service.ts';
import { commitChainEvent } from '../settlement/commit.ts';
import { createChainAdapter } from '../chains/registry.ts';
import type { ChainAdapter } from '../chains/sync/adapter.ts';
import { DEFAULT_LEASE_TTL_SECONDS, tryLock } from '../chains/single-flight.ts';

/** How long the rewind holds the chain lease (renewed inside its transaction). */
const LEASE_TTL_SECONDS = 60;
/** Known blocks at or below H checked against the node (the highest first). */
const MAX_CHECKED_BLOCKS = 20;

export interface RewindDeps {
  sql: Sql;
  settlement: SettlementService;
  chains: Record<string, ChainConfig>;
  /** The chain's adapter (default: from the chain registry, talking to the configured node). */
  adapter?: ChainAdapter;
}

export interface RewindOptions {
  chain: string;
  height: number;
}

export interface RewindResult {
  object: 'chain_rewind';
  chain: string;
  type: ChainConfig['type'];
  previous_cursor: { height: number; hash: string };
  cursor: { height: number; hash: string };
  /** Blocks between the new and the old cursor that the watcher will scan again. */
  blocks_dropped: number;
  /** Kassa's records at or below H that were found in the node's best chain. */
  checked_blocks: { height: number; hash: string; source: 'chain_blocks' | 'payment' }[];
  payments_reset: { id: string; invoice_id: string; txid: string; output_index: number; block_height: number; status: string }[];
  invoices_recomputed: { id: string; status: string; exception: string | null }[];
  /** Invoices whose state, amount paid or ledger changed. */
  invoices_changed: string[];
}

/**
 * Rewinds `chain` to `height` (see the file comment) and publishes the changed invoices for live
 * status. When it refuses, it throws a `KassaError` (a `UsageError` for a bad chain or height)
 * and changes nothing.
 */
export async function rewindChain(deps: RewindDeps, opts: RewindOptions): Promise<RewindResult> {
  const { chain, height } = opts;
  const cfg = deps.chains[chain];
  if (!cfg) {
    const known = Object.keys(deps.chains);
    throw new UsageError(`--chain ${chain} is not in the chains config (KASSA_CONFIG)${known.length ? `; known: ${known.join(', ')}` : ''}`);
  }
  if (!Number.isSafeInteger(height) || height < 0) throw new UsageError('--height must be a block height (an integer ≥ 0)');
  const { sql, settlement } = deps;
  const leaseName = `watch:${chain}`;

  const lock = await tryLock(sql, leaseName, { ttlSeconds: LEASE_TTL_SECONDS });
  if (!lock) {
    const [l] = await sql<{ holder: string; expires_at: Date }[]>`select holder, expires_at from leases where name = ${leaseName}`;
    throw new KassaError(
      'chain_watcher_running',
      `a worker is watching chain "${chain}" (lease ${leaseName} held by ${l?.holder ?? '?'}${l ? ` until ${l.expires_at.toISOString()}` : ''}). ` +
        `Stop all workers (kassa worker) first; their lease expires up to ${DEFAULT_LEASE_TTL_SECONDS} s after they stop. Then run this command again.`,
      { status: 409, retryable: false },
    );
  }
  try {
    const cursor = await settlement.cursor(sql, chain);
    if (!cursor) throw new KassaError('chain_not_watched', `chain "${chain}" has no cursor: Kassa has not watched it yet, there is nothing to rewind.`, { status: 409, retryable: false });
    if (height > cursor.height) {
      throw new KassaError('rewind_above_cursor', `height ${height} is above Kassa's cursor for chain "${chain}" (height ${cursor.height}): pick a height at or below ${cursor.height}, below the fork.`, { status: 409, retryable: false });
    }

    const node = deps.adapter ?? createChainAdapter(chain, cfg, { sql, logger: createLogger({ level: 'error', destination: process.stderr }) });
    const block = await node.blockAt(height);
    if (!block) {
      throw new KassaError('rewind_node_behind', `the node for chain "${chain}" (${node.nodeName}) has no block at height ${height}: is it synced? Pick a height the node has.`, { status: 409, retryable: false });
    }

    // Everything Kassa recorded at or below H must be in the node's best chain, else H is above the fork.
    const known = await sql<{ height: bigint; hash: string; source: 'chain_blocks' | 'payment' }[]>`
      select height, hash, source from (
        select height, hash, 'chain_blocks' as source from chain_blocks where chain = ${chain} and height <= ${height}
        union all
        select distinct block_height, block_hash, 'payment' from payments
        where chain = ${chain} and status = 'confirmed' and block_height <= ${height} and block_hash is not null
      ) k order by height desc, source limit ${MAX_CHECKED_BLOCKS}`;
    const checked: RewindResult['checked_blocks'] = [];
    for (const k of known) {
      const h = Number(k.height);
      const nodeHash = h === height ? block.hash.toLowerCase() : await node.hashAt(h);
      if (nodeHash !== k.hash.toLowerCase()) {
        throw new KassaError(
          'rewind_above_fork',
          `height ${height} is above the fork: Kassa's block at height ${h} (${k.hash}, from ${k.source === 'payment' ? 'a confirmed payment' : 'its kept block hashes'}) ` +
            `is not in the node's best chain (the node has ${nodeHash ?? 'no block'} there). Pick a height below ${h}.`,
          { status: 409, retryable: false },
        );
      }
      if (!checked.some((c) => c.height === h)) checked.push({ height: h, hash: k.hash, source: k.source });
    }

    // The rescan only watches invoices inside their monitoring window: a payment of a closed
    // invoice reset here would never be confirmed again (and would end `replaced` / `reorged`).
    const closed = await sql<{ id: string; invoice_id: string; block_height: bigint; monitoring_until: Date }[]>`
      select p.id, p.invoice_id, p.block_height, i.monitoring_until from payments p join invoices i on i.id = p.invoice_id
      where p.chain = ${chain} and p.status = 'confirmed' and p.block_height > ${height} and i.monitoring_until <= now()
      order by p.block_height limit 5`;
    if (closed.length > 0) {
      const c = closed[0]!;
      throw new KassaError(
        'rewind_closes_monitoring',
        `rewinding chain "${chain}" to ${height} would reset payment ${c.id} (block ${c.block_height}) of invoice ${c.invoice_id}, whose monitoring window ended ${c.monitoring_until.toISOString()}` +
          `${closed.length > 1 ? ` (and ${closed.length - 1}${closed.length === 5 ? '+' : ''} more)` : ''}: the watcher no longer watches its address, so the rescan could not confirm it again. ` +
          `If the node still has block ${c.block_height}, pick a height at or above it.`,
        { status: 409, retryable: false },
      );
    }

    // One `reorg` commit through the settlement entry point, the same as the engine's rollback,
    // plus the cursor set to the node's block at H. Payments of dropped blocks become `pending`
    // or `reorged` as the chain's family says (Bitcoin: pending, the rescan re-confirms them or
    // marks them replaced; EVM: reorged, a rescan that finds the transfer confirms it again).
    let reset: { id: string; invoice_id: string; txid: string; output_index: number; block_height: bigint }[] = [];
    const stillPending = await node.stillPending('rewind');
    const { touched, changed } = await commitChainEvent(sql, settlement, chain, {
      kind: 'reorg', ancestor: height, stillPending, cursor: { block, keep: cfg.reorg_window },
      guard: async (tx) => {
        // Still ours? Renewing inside the transaction also locks the lease row until the commit, so
        // a worker cannot take the chain over halfway through.
        const mine = await tx`
          update leases set expires_at = now() + make_interval(secs => ${LEASE_TTL_SECONDS})
          where name = ${leaseName} and holder = ${lock.holder} and expires_at > now() returning 1`;
        if (mine.length !== 1) throw new KassaError('chain_watcher_running', `lost the lease ${leaseName} (a worker took chain "${chain}" over): stop all workers and run this command again.`, { status: 409, retryable: false });
        reset = await tx<typeof reset>`
          select id, invoice_id, txid, output_index, block_height from payments
          where chain = ${chain} and block_height > ${height} and status = 'confirmed' order by block_height, seq`;
      },
    });
    const invoices = touched.size
      ? await sql<{ id: string; status: string; exception: string | null }[]>`select id, status, exception from invoices where id = any(${[...touched]}) order by id`
      : [];
    return {
      object: 'chain_rewind',
      chain,
      type: cfg.type,
      previous_cursor: cursor,
      cursor: { height: block.height, hash: block.hash },
      blocks_dropped: cursor.height - height,
      checked_blocks: checked,
      payments_reset: reset.map((p) => ({
        id: p.id, invoice_id: p.invoice_id, txid: p.txid, output_index: p.output_index, block_height: Number(p.block_height), status: stillPending(p.txid) ? 'pending' : 'reorged',
      })),
      invoices_recomputed: invoices.map((i) => ({ id: i.id, status: i.status, exception: i.exception })),
      invoices_changed: [...changed].sort(),
    };
  } finally {
    await lock.release();
  }
}

/** The human summary printed by `kassa chains rewind`. */
export function describeRewind(r: RewindResult): string {
  const lines = [
    `Rewound chain "${r.chain}" from height ${r.previous_cursor.height} to ${r.cursor.height} (${r.cursor.hash}, the node's block).`,
    r.checked_blocks.length
      ? r.checked_blocks.length === 1
        ? `Checked: Kassa's block at height ${r.checked_blocks[0]!.height} is in the node's best chain.`
        : `Checked: Kassa's blocks at heights ${r.checked_blocks.map((c) => c.height).join(', ')} are in the node's best chain.`
      : `Kassa has no record of a block at or below ${r.cursor.height} to compare with the node: make sure ${r.cursor.height} is below the fork (docs/operations.md).`,
    `Payments reset: ${r.payments_reset.length}` +
      (r.payments_reset.length ? (r.payments_reset.every((p) => p.status === 'pending') ? ' (now pending: the rescan confirms them again or marks them replaced)' : ' (now reorged: the rescan confirms them again if their transfer is on the new chain)') : ''),
    ...r.payments_reset.map((p) => `  ${p.id} ${p.txid}:${p.output_index} (invoice ${p.invoice_id}) was in block ${p.block_height}`),
    `Invoices recomputed: ${r.invoices_recomputed.length} (changed: ${r.invoices_changed.length})`,
    ...r.invoices_recomputed.map((i) => `  ${i.id}: ${i.status}${i.exception ? ` (${i.exception})` : ''}`),
    `Cursor: height ${r.cursor.height}. The watcher scans again from height ${r.cursor.height + 1} (Kassa had processed up to ${r.previous_cursor.height}).`,
    `Next: start the workers (kassa worker) and watch /health until chain "${r.chain}" is ok with no lag; then run`,
    `  kassa reconcile --merchant <id> --from <date> --to <date> for the affected period and check its mismatches`,
    `  (the workers re-verify confirmed payments against the node every 5 minutes).`,
  ];
  return lines.join('\n');
}

export const chainCommands: Record<string, Command> = {
  'chains rewind': {
    options: { chain: { type: 'string' }, height: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const chain = values.chain;
      if (typeof chain !== 'string' || chain === '') throw new UsageError('--chain is required (a chain key from the chains config)');
      const rawHeight = values.height;
      if (typeof rawHeight !== 'string' || !/^\d+$/.test(rawHeight)) throw new UsageError('--height is required: a block height below the fork (see docs/operations.md)');
      const cfg = config();
      const logger = createLogger({ level: 'error', destination: process.stderr });
      await prepareDatabase(cfg, logger);
      const deps = createDeps(cfg, { logger });
      try {
        const result = await rewindChain({ sql: deps.sql, settlement: deps.settlement, chains: cfg.chains }, { chain, height: Number(rawHeight) });
        printResult(Boolean(values.json), result, describeRewind(result));
      } finally {
        await deps.close();
      }
    },
  },
};

/** The table src/cli/main.ts loads. */
export const commands = chainCommands;
