/**
 * The refund half of `kassa sandbox scenario overpaid-refund|partial-refund`: the whole path a
 * merchant and a customer go through (docs/refunds.md), against the running sandbox.
 *
 * SANDBOX-ONLY: the sandbox holds the demo merchant's keys (its Bitcoin wallet seed in wallet.json,
 * hardhat account 1 as the EVM treasury), so it plays the merchant's wallet and signs. Kassa itself
 * still holds no key: the refund goes through the public API exactly as a merchant's would (create,
 * the customer's claim, approve, the signed PSBT upload or the reported EVM transaction), and the
 * worker's `track-refunds` job completes it.
 */
import * as bitcoin from 'bitcoinjs-lib';
import { erc20Abi, type Address, type Hex } from 'viem';
import { KassaError } from '../errors.ts';
import { bip32, ensureEcc } from '../chains/bitcoin/ecc.ts';
import { testUSDCAbi, testUSDTAbi } from './contract-artifacts.ts';
import { readJson, sandboxPaths } from '../cli/sandbox-runtime.ts';
import { evmClients, HARDHAT_ACCOUNTS } from './hardhat.ts';
import type { SandboxContext } from './actions.ts';

interface Refund {
  id: string;
  status: string;
  amount: string;
  asset: string;
  claim_url: string | null;
  txid: string | null;
  bitcoin: { psbt: string | null } | null;
  evm: { transaction: { to: Address; value: string; data: Hex } | null } | null;
}

export interface RefundRun {
  id: string;
  amount: string;
  asset: string;
  destination: string;
  txid: string;
}

/** The demo customer's refund address: a new devnet wallet address, or hardhat account 3. */
async function customerAddress(ctx: SandboxContext, method: string): Promise<string> {
  return method === 'BTC' ? ctx.btc.call<string>('getnewaddress') : HARDHAT_ACCOUNTS[3]!.address;
}

/**
 * Creates the refund (`body`: the API's refund fields), claims it as the customer, approves it,
 * signs and sends it as the merchant's wallet, and returns it once Kassa recorded it as broadcast.
 */
export async function refundAsMerchant(
  ctx: SandboxContext,
  invoiceId: string,
  method: string,
  body: Record<string, unknown>,
  step: (s: string) => void,
): Promise<RefundRun> {
  const created = await ctx.api<Refund>('POST', `/v1/invoices/${invoiceId}/refunds`, body);
  step(`create refund ${created.id}: ${JSON.stringify(body)} → ${created.amount} ${created.asset}, claim link ${created.claim_url}`);
  const token = new URL(created.claim_url!).pathname.split('/').pop()!;
  const destination = await customerAddress(ctx, method);
  const res = await fetch(`${ctx.runtime.api_url}/v1/public/refund_claims/${token}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ destination }),
  });
  if (!res.ok) throw new KassaError('sandbox_api_error', `the customer's claim answered ${res.status}: ${await res.text()}`, { retryable: false });
  step(`the customer claims it with ${destination}`);
  // The devnet has no fee estimates: a fixed 1 sat/vB.
  const approved = await ctx.api<Refund>('POST', `/v1/refunds/${created.id}/approve`, method === 'BTC' ? { fee_rate: '1' } : {});
  step(`approve: ${approved.bitcoin ? 'Kassa prepared the unsigned PSBT' : `Kassa prepared the transaction to ${approved.evm?.transaction?.to}`}`);

  let sent: Refund;
  if (approved.bitcoin?.psbt) {
    const wallet = readJson<{ seed: string; path: string }>(sandboxPaths(ctx.dataDir).wallet);
    if (!wallet) throw new KassaError('sandbox_wallet_missing', 'the sandbox wallet (wallet.json) is missing', { retryable: false });
    ensureEcc();
    const account = bip32().fromSeed(Buffer.from(wallet.seed, 'hex'), bitcoin.networks.regtest).derivePath(wallet.path);
    const psbt = bitcoin.Psbt.fromBase64(approved.bitcoin.psbt, { network: bitcoin.networks.regtest });
    // The demo merchant's key source is a bare tpub, so each input names the account key's own
    // fingerprint and the path m/<branch>/<index> from it (docs/refunds.md): derive that child of
    // the account key and sign with it (signAllInputsHD wants the master key).
    psbt.data.inputs.forEach((input, i) => {
      const d = input.bip32Derivation?.find((x) => Buffer.from(x.masterFingerprint).equals(Buffer.from(account.fingerprint)));
      if (!d) throw new KassaError('sandbox_scenario_failed', `input ${i} of the refund PSBT is not the demo merchant's`, { retryable: false });
      psbt.signInput(i, account.derivePath(d.path.replace(/^m\//, '')));
    });
    sent = await ctx.api<Refund>('POST', `/v1/refunds/${created.id}/signed_psbt`, { psbt: psbt.toBase64() });
    step(`sign the PSBT with the merchant's wallet and upload it: broadcast ${sent.txid}`);
  } else {
    const t = approved.evm!.transaction!;
    const e = ctx.runtime.ethereum;
    const treasury = evmClients(e.rpc_url, HARDHAT_ACCOUNTS[1]!.privateKey);
    if (t.data !== '0x') {
      // The payment sits in the invoice's forwarder until the sweeper moves it; the sandbox's treasury gets test tokens instead.
      const needed = BigInt(`0x${t.data.slice(74)}`);
      const balance = await treasury.publicClient.readContract({ address: t.to, abi: erc20Abi, functionName: 'balanceOf', args: [treasury.walletClient.account.address] });
      if (balance < needed) {
        const deployer = evmClients(e.rpc_url, e.deployer_private_key as Hex);
        const abi = t.to.toLowerCase() === e.usdt.toLowerCase() ? testUSDTAbi : testUSDCAbi;
        const mint = await deployer.walletClient.writeContract({ address: t.to, abi, functionName: 'mint', args: [treasury.walletClient.account.address, needed * 10n], account: deployer.walletClient.account, chain: deployer.walletClient.chain });
        await deployer.publicClient.waitForTransactionReceipt({ hash: mint });
      }
    }
    const hash = await treasury.walletClient.sendTransaction({ to: t.to, data: t.data, value: BigInt(t.value), account: treasury.walletClient.account, chain: treasury.walletClient.chain });
    await treasury.publicClient.waitForTransactionReceipt({ hash });
    sent = await ctx.api<Refund>('POST', `/v1/refunds/${created.id}/transaction`, { txid: hash });
    step(`send it from the treasury's wallet (${hash}) and report the hash: ${sent.status}`);
  }
  if (sent.status !== 'broadcast' || !sent.txid) throw new KassaError('sandbox_scenario_failed', `refund ${created.id} is ${sent.status} after sending`, { retryable: false });
  return { id: created.id, amount: created.amount, asset: created.asset, destination, txid: sent.txid };
}

/** Refund states by their events (the path the scenario reports). */
export const REFUND_STATE_OF: Record<string, string> = {
  'refund.created': 'awaiting_destination',
  'refund.claimed': 'awaiting_approval',
  'refund.approved': 'awaiting_signature',
  'refund.broadcast': 'broadcast',
  'refund.completed': 'completed',
  'refund.reorged': 'broadcast',
  'refund.failed': 'failed',
  'refund.cancelled': 'cancelled',
};
export const REFUND_EXPECTED_PATH = ['awaiting_destination', 'awaiting_approval', 'awaiting_signature', 'broadcast', 'completed'];
