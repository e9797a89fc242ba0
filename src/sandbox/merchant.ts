/**
 * The sandbox's demo merchant: created once (ids and key in state.json), reused on later starts.
 * - Bitcoin: a random seed generated once into wallet.json (mode 0600); the merchant gets its
 *   regtest BIP84 account xpub (tpub, P2WPKH), so the sandbox could also spend what it received.
 * - EVM: hardhat account 1 is the treasury for ETH, USDC and USDT on the `ethereum` chain.
 * - A webhook endpoint pointing at the built-in receiver (its URL is updated on every start,
 *   since the receiver's port may change).
 */
import { randomBytes } from 'node:crypto';
import { BIP32Factory } from 'bip32';
import * as ecc from '@bitcoinerlab/secp256k1';
import * as bitcoin from 'bitcoinjs-lib';
import type { Deps } from '../deps.ts';
import { SCOPES } from '../merchants/scopes.ts';
import { parseBitcoinKeySource } from '../chains/bitcoin/descriptor.ts';
import { setBitcoinKeySource } from '../chains/bitcoin/address-pool.ts';
import { setEvmPaymentMethod } from '../chains/evm/payment-method.ts';
import { databaseName } from '../db/client.ts';
import { writePrivateJson, type SandboxState } from './files.ts';
import { readJson, type SandboxPaths } from '../cli/sandbox-runtime.ts';
import { HARDHAT_ACCOUNTS } from './hardhat.ts';

const bip32 = BIP32Factory(ecc);

export interface SandboxWallet {
  seed: string;
  path: string;
  tpub: string;
}

/** The demo merchant's Bitcoin wallet: generated once (32 random bytes, no BIP39), kept in wallet.json. */
export function loadOrCreateWallet(paths: SandboxPaths): SandboxWallet {
  const existing = readJson<{ seed: string }>(paths.wallet);
  const seed = existing?.seed ?? randomBytes(32).toString('hex');
  const accountPath = "m/84'/1'/0'";
  const account = bip32.fromSeed(Buffer.from(seed, 'hex'), bitcoin.networks.regtest).derivePath(accountPath);
  const wallet = { seed, path: accountPath, tpub: account.neutered().toBase58() };
  if (!existing) writePrivateJson(paths.wallet, { ...wallet, note: 'Sandbox-only Bitcoin wallet of the demo merchant (regtest). Never use it on a real network.' });
  return wallet;
}

export const SANDBOX_TREASURY = HARDHAT_ACCOUNTS[1]!.address;

/**
 * Returns the demo merchant from state.json when it still exists in this database, otherwise
 * creates it with an all-scopes API key. Payment methods are (re)applied on every start.
 */
export async function ensureDemoMerchant(deps: Deps, paths: SandboxPaths): Promise<{ state: SandboxState; created: boolean }> {
  const database = databaseName(deps.config.databaseUrl);
  let state = readJson<SandboxState>(paths.state);
  let created = false;
  if (state && state.database === database) {
    const [row] = await deps.sql<{ id: string }[]>`select id from merchants where id = ${state.merchant_id}`;
    const [key] = await deps.sql<{ id: string }[]>`select id from api_keys where id = ${state.api_key_id} and revoked_at is null`;
    if (!row || !key) state = null;
  } else state = null;
  if (!state) {
    state = await deps.sql.begin(async (tx) => {
      const merchant = await deps.merchants.create(tx, { name: 'Sandbox Shop' });
      const { key, secret } = await deps.apiKeys.create(tx, { merchantId: merchant.id, name: 'sandbox demo key', scopes: [...SCOPES] });
      return { merchant_id: merchant.id, api_key_id: key.id, api_key: secret, webhook_endpoint_id: null, webhook_secret: null, database };
    });
    writePrivateJson(paths.state, state);
    created = true;
  }
  const wallet = loadOrCreateWallet(paths);
  const source = parseBitcoinKeySource({ xpub: wallet.tpub, address_type: 'p2wpkh' }, 'regtest');
  const merchantId = state.merchant_id;
  await deps.sql.begin((tx) => setBitcoinKeySource(tx, merchantId, 'bitcoin', source));
  await setEvmPaymentMethod(deps.sql, merchantId, 'ethereum', { treasury: SANDBOX_TREASURY, assets: ['ETH', 'USDC', 'USDT'] });
  return { state, created };
}

/** Resets the cursors of the sandbox chains: the in-memory chains restart empty on every start. */
export async function resetChainCursors(deps: Deps, chains: string[]): Promise<void> {
  await deps.sql.begin(async (tx) => {
    await tx`delete from chain_blocks where chain in ${tx(chains)}`;
    await tx`delete from chain_state where chain in ${tx(chains)}`;
  });
}

/**
 * Creates the webhook endpoint through the API (the only way to learn its secret) or points the
 * existing one at the receiver's current URL. Returns null when this build has no webhook API.
 */
export async function ensureWebhookEndpoint(apiUrl: string, state: SandboxState, receiverUrl: string, paths: SandboxPaths): Promise<{ state: SandboxState; status: 'created' | 'updated' | 'unavailable' }> {
  const headers = { authorization: `Bearer ${state.api_key}`, 'content-type': 'application/json' };
  if (state.webhook_endpoint_id && state.webhook_secret) {
    const res = await fetch(`${apiUrl}/v1/webhook_endpoints/${state.webhook_endpoint_id}`, {
      method: 'POST', headers, body: JSON.stringify({ url: receiverUrl, enabled: true }),
    });
    if (res.ok) return { state, status: 'updated' };
    if (res.status !== 404) throw new Error(`updating the sandbox webhook endpoint failed: ${res.status} ${await res.text()}`);
  }
  const res = await fetch(`${apiUrl}/v1/webhook_endpoints`, {
    method: 'POST', headers, body: JSON.stringify({ url: receiverUrl, events: ['*'], description: 'Kassa sandbox receiver' }),
  });
  if (res.status === 404 || res.status === 405) return { state, status: 'unavailable' };
  if (!res.ok) throw new Error(`creating the sandbox webhook endpoint failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { id: string; secret: string };
  const next = { ...state, webhook_endpoint_id: body.id, webhook_secret: body.secret };
  writePrivateJson(paths.state, next);
  return { state: next, status: 'created' };
}
