/**
 * A merchant set up to take payments: a regtest Bitcoin xpub (its private side is known here only
 * so tests could spend if needed) and an EVM treasury, with a chains config using fixed rates.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIP32Factory } from 'bip32';
import * as ecc from '@bitcoinerlab/secp256k1';
import * as bitcoin from 'bitcoinjs-lib';
import type { Deps } from '../../src/deps.ts';
import { parseBitcoinKeySource } from '../../src/chains/bitcoin/descriptor.ts';
import { setBitcoinKeySource } from '../../src/chains/bitcoin/address-pool.ts';
import { setEvmPaymentMethod } from '../../src/chains/evm/payment-method.ts';
import { createMerchantWithKey } from './db.ts';

const bip32 = BIP32Factory(ecc);

export const TEST_TREASURY = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
export const TEST_USDC = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
export const TEST_USDT = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512';

export interface ChainsFileOptions {
  bitcoinRpc?: { url: string; user?: string; password?: string };
  evmRpcUrl?: string;
  factory?: string;
  implementation?: string;
  usdc?: string;
  usdt?: string;
  rates?: Record<string, string>;
}

/** Writes a chains file and returns its path (pass it as KASSA_CONFIG). */
export function writeChainsFile(o: ChainsFileOptions = {}): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'kassa-chains-')), 'chains.json');
  writeFileSync(file, JSON.stringify({
    chains: {
      bitcoin: { type: 'bitcoin', network: 'regtest', rpc: o.bitcoinRpc ?? { url: 'http://127.0.0.1:1' }, poll_interval_ms: 100 },
      ethereum: {
        type: 'evm', network: 'local', chain_id: 31337, rpc_url: o.evmRpcUrl ?? 'http://127.0.0.1:1',
        factory: o.factory ?? '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0',
        implementation: o.implementation ?? '0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9',
        confirmations: { high: 0, medium: 1, low_medium: 2, low: 3 },
        tokens: [
          { symbol: 'USDC', address: o.usdc ?? TEST_USDC, decimals: 6 },
          { symbol: 'USDT', address: o.usdt ?? TEST_USDT, decimals: 6 },
        ],
        poll_interval_ms: 100,
      },
    },
    rates: {
      providers: ['fixed'],
      fixed: o.rates ?? { 'BTC-USD': '60000.00', 'ETH-USD': '3000.00', 'USDC-USD': '1', 'USDT-USD': '1', 'BTC-EUR': '55000.00', 'ETH-BTC': '0.05', 'BTC-JPY': '9000000' },
    },
  }));
  return file;
}

export function testWallet(seedByte = 7) {
  const root = bip32.fromSeed(Buffer.alloc(32, seedByte), bitcoin.networks.testnet);
  const account = root.derivePath("m/84'/1'/0'");
  return { root, account, tpub: account.neutered().toBase58() };
}

/** A merchant with Bitcoin (regtest xpub) and ETH/USDC/USDT on `ethereum` enabled. */
export async function createPayableMerchant(deps: Deps, opts: { name?: string; bitcoin?: boolean; evmAssets?: string[] | null; seedByte?: number } = {}) {
  const m = await createMerchantWithKey(deps, { name: opts.name ?? 'Payable shop' });
  const wallet = testWallet(opts.seedByte);
  if (opts.bitcoin !== false) {
    const source = parseBitcoinKeySource({ xpub: wallet.tpub, address_type: 'p2wpkh' }, 'regtest');
    await deps.sql.begin((tx) => setBitcoinKeySource(tx, m.merchant.id, 'bitcoin', source));
  }
  if (opts.evmAssets !== null) {
    await setEvmPaymentMethod(deps.sql, m.merchant.id, 'ethereum', { treasury: TEST_TREASURY as `0x${string}`, assets: opts.evmAssets ?? ['ETH', 'USDC', 'USDT'] });
  }
  return { ...m, wallet };
}
