/**
 * Merchant-signed EVM transfers without a key (refunds and payouts, docs/refunds.md, "EVM"): the
 * exact transaction the merchant's own wallet sends (native value to the destination, or an ERC-20
 * `transfer(destination, amount)` call on the token), its EIP-681 link, and the check of a
 * transaction the merchant reports by hash.
 *
 * The check is one function, `checkEvmTransfer`, used when the hash is reported and again by the
 * tracker at every pass: a transfer counts as paid only by what the transaction moves on the
 * transfer's chain — for a token, the `Transfer` logs of that token to the destination in a
 * successful receipt; for the native coin, the transaction's own `to` and `value` — and only when
 * that is exactly the amount to the destination. Before the transaction is mined only its fields
 * can be read, so a pending transaction is accepted only in the direct form Kassa prepared.
 */
import { decodeFunctionData, encodeFunctionData, erc20Abi, getAddress, parseEventLogs, type Address, type Hex, type Log } from 'viem';
import type { EvmTransferTx } from '../transfer.ts';

export interface EvmTransferTarget {
  chainId: number;
  /** ERC-20 contract (lower or mixed case); undefined for the chain's native coin. */
  token: string | undefined;
  destination: string;
  amount: bigint;
}

export function buildEvmTransferTx(t: EvmTransferTarget & { from: string | null }): EvmTransferTx {
  const to = getAddress(t.destination);
  const from = t.from ? getAddress(t.from) : null;
  if (t.token === undefined) return { chain_id: t.chainId, from, to, value: t.amount.toString(), data: '0x' };
  return {
    chain_id: t.chainId, from, to: getAddress(t.token), value: '0',
    data: encodeFunctionData({ abi: erc20Abi, functionName: 'transfer', args: [to, t.amount] }),
  };
}

/** EIP-681 link of the same transaction (as the checkout's payment links: base units, chain id). */
export function evmTransferLink(t: EvmTransferTarget): string {
  const to = getAddress(t.destination);
  if (t.token === undefined) return `ethereum:${to}@${t.chainId}?value=${t.amount}`;
  return `ethereum:${getAddress(t.token)}@${t.chainId}/transfer?address=${to}&uint256=${t.amount}`;
}

/** The parts of a transaction and its receipt the check reads (viem's shapes). */
export interface SeenTx {
  hash: string;
  from: string;
  to: string | null;
  value: bigint;
  input: string;
  nonce: number;
  chainId?: number | undefined;
}
export interface SeenReceipt {
  status: 'success' | 'reverted';
  blockNumber: bigint;
  logs: Log[];
}

export type EvmTransferCheck =
  | { ok: true; sender: string; nonce: number; mined: boolean }
  | { ok: false; code: 'transaction_wrong_chain' | 'transaction_wrong_recipient' | 'transaction_wrong_amount' | 'transaction_wrong_asset' | 'transaction_reverted' | 'transaction_not_verifiable_yet'; message: string };

const eq = (a: string | null | undefined, b: string) => typeof a === 'string' && a.toLowerCase() === b.toLowerCase();

/**
 * Whether `tx` (with its receipt once mined) pays exactly `t.amount` of the transfer's asset to
 * `t.destination` on chain `t.chainId`. `fmt` writes an amount for the messages.
 */
export function checkEvmTransfer(t: EvmTransferTarget, tx: SeenTx, receipt: SeenReceipt | null, fmt: (v: bigint) => string): EvmTransferCheck {
  if (tx.chainId !== undefined && tx.chainId !== t.chainId) {
    return { ok: false, code: 'transaction_wrong_chain', message: `Transaction ${tx.hash} was signed for chain id ${tx.chainId}, not ${t.chainId}: send it on the right network.` };
  }
  if (receipt?.status === 'reverted') {
    return { ok: false, code: 'transaction_reverted', message: `Transaction ${tx.hash} failed on chain (reverted): it moved no money. Send it again and report the new transaction.` };
  }
  const pass = { ok: true as const, sender: getAddress(tx.from), nonce: tx.nonce, mined: receipt !== null };
  if (t.token === undefined) {
    // Native coin: only the transaction's own value is visible (a transfer made inside a contract call is not).
    if (!eq(tx.to, t.destination)) {
      return { ok: false, code: 'transaction_wrong_recipient', message: `Transaction ${tx.hash} sends the coin to ${tx.to ?? 'a new contract'}, not to the destination ${getAddress(t.destination)}. (A transfer of the native coin must be a plain transfer from an ordinary account: a transfer made inside a contract call cannot be checked.)` };
    }
    if (tx.value !== t.amount) {
      return { ok: false, code: 'transaction_wrong_amount', message: `Transaction ${tx.hash} sends ${fmt(tx.value)}, but it should be ${fmt(t.amount)}.` };
    }
    return pass;
  }
  if (receipt === null) {
    // Not mined yet: only the direct `transfer(destination, amount)` call on the token can be read before it runs.
    let call: { functionName: string; args: readonly unknown[] } | null = null;
    try {
      call = decodeFunctionData({ abi: erc20Abi, data: tx.input as Hex }) as { functionName: string; args: readonly unknown[] };
    } catch { /* not an ERC-20 call */ }
    if (call?.functionName === 'transfer') {
      const [to, value] = call.args as [string, bigint];
      if (!eq(tx.to, t.token)) return { ok: false, code: 'transaction_wrong_asset', message: `Transaction ${tx.hash} transfers the token at ${tx.to}, not the asset asked for (${getAddress(t.token)}).` };
      if (!eq(to, t.destination)) return { ok: false, code: 'transaction_wrong_recipient', message: `Transaction ${tx.hash} transfers to ${getAddress(to)}, not to the destination ${getAddress(t.destination)}.` };
      if (value !== t.amount) return { ok: false, code: 'transaction_wrong_amount', message: `Transaction ${tx.hash} transfers ${fmt(value)}, but it should be ${fmt(t.amount)}.` };
      return pass;
    }
    return { ok: false, code: 'transaction_not_verifiable_yet', message: `Transaction ${tx.hash} is not mined yet and is not a direct token transfer, so what it pays can be checked only once it is mined: report it again then.` };
  }
  const transfers = parseEventLogs({ abi: erc20Abi, eventName: 'Transfer', logs: receipt.logs, strict: false });
  let paid = 0n;
  let toOthers = false;
  let otherAsset = false;
  for (const l of transfers) {
    if (l.args.to === undefined || l.args.value === undefined) continue;
    const ours = eq(l.address, t.token);
    if (ours && eq(l.args.to, t.destination)) paid += l.args.value;
    else if (ours) toOthers = true;
    else if (eq(l.args.to, t.destination)) otherAsset = true;
  }
  if (paid === 0n) {
    if (otherAsset) return { ok: false, code: 'transaction_wrong_asset', message: `Transaction ${tx.hash} pays the destination in another token, not in the asset asked for (${getAddress(t.token)}).` };
    return { ok: false, code: 'transaction_wrong_recipient', message: `Transaction ${tx.hash} does not transfer the asset asked for to the destination ${getAddress(t.destination)}${toOthers ? ' (it transfers it to another address)' : ''}.` };
  }
  if (paid !== t.amount) return { ok: false, code: 'transaction_wrong_amount', message: `Transaction ${tx.hash} transfers ${fmt(paid)} to the destination, but it should be ${fmt(t.amount)}.` };
  return pass;
}
