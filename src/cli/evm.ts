/**
 * EVM commands for the `kassa` CLI (listed in src/cli/main.ts, loaded when one of them runs):
 *
 *   kassa evm deploy --chain <key> (--private-key 0x… | --key-file <path>) [--test-tokens] [--json]
 *   kassa evm sweep  --invoice <id> [--chain <key>] (--private-key 0x… | --key-file <path>) [--force] [--json]
 *
 * Keys: only src/config.ts reads the environment, so there is no KASSA_DEPLOYER_KEY variable. A
 * key comes from `--key-file` (a file holding 0x + 64 hex, recommended: not visible in `ps` or
 * shell history) or `--private-key`. Keys are never printed or logged.
 */
import { readFileSync } from 'node:fs';
import { createWalletClient, http, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { printResult, UsageError, type Command } from './util.ts';
import { adminConfig as config } from './context.ts';
import { createLogger } from '../logger.ts';
import { createDeps } from '../deps.ts';
import { prepareDatabase } from '../db/prepare.ts';
import type { EvmChainConfig } from '../config.ts';
import { createEvmClient } from '../chains/evm/client.ts';
import { deployKassaContracts, type KassaContracts } from '../chains/evm/deploy.ts';
import { createSweeper } from '../chains/evm/sweeper.ts';
import { isEvmChain } from '../chains/evm/payment-method.ts';

const keyOptions = { 'private-key': { type: 'string' }, 'key-file': { type: 'string' } } as const;

function privateKey(values: Record<string, unknown>): Hex {
  let raw = values['private-key'];
  if (typeof values['key-file'] === 'string') {
    try {
      raw = readFileSync(values['key-file'], 'utf8').trim();
    } catch (err) {
      throw new UsageError(`--key-file cannot be read: ${(err as Error).message}`);
    }
  }
  if (typeof raw !== 'string' || raw === '') throw new UsageError('a key is required: --key-file <path> (recommended) or --private-key 0x…');
  if (!/^0x[0-9a-fA-F]{64}$/.test(raw)) throw new UsageError('the private key must be 0x followed by 64 hex digits');
  return raw as Hex;
}

function evmChain(chains: Record<string, { type: string }>, key: unknown): { key: string; cfg: EvmChainConfig } {
  if (typeof key !== 'string' || key === '') throw new UsageError('--chain is required (an EVM chain key from the chains config)');
  const cfg = chains[key];
  if (!isEvmChain(cfg)) {
    const known = Object.entries(chains).filter(([, c]) => isEvmChain(c)).map(([k]) => k);
    throw new UsageError(`--chain ${key} is not an EVM chain in the chains config (KASSA_CONFIG)${known.length ? `; known: ${known.join(', ')}` : ''}`);
  }
  return { key, cfg: cfg as EvmChainConfig };
}

function wallet(cfg: EvmChainConfig, key: Hex) {
  const client = createEvmClient(cfg);
  const walletClient = createWalletClient({ account: privateKeyToAccount(key), chain: client.public.chain, transport: http(cfg.rpc_url, { retryCount: 2 }) });
  return { publicClient: client.public, walletClient };
}

export const evmCommands: Record<string, Command> = {
  'evm deploy': {
    options: { chain: { type: 'string' }, ...keyOptions, 'test-tokens': { type: 'boolean' }, json: { type: 'boolean' } },
    async run(values) {
      const cfg0 = config();
      const { key, cfg } = evmChain(cfg0.chains, values.chain);
      const { publicClient, walletClient } = wallet(cfg, privateKey(values));
      const chainId = await publicClient.getChainId();
      if (chainId !== cfg.chain_id) throw new UsageError(`the node at ${cfg.rpc_url} is chain id ${chainId}, the config says ${cfg.chain_id}`);
      // The test tokens are sandbox code (anybody can mint them): loaded only when asked for.
      const c: KassaContracts & { testUsdc?: string; testUsdt?: string } = values['test-tokens']
        ? await (await import('../sandbox/test-tokens.ts')).deployDevContracts({ walletClient, publicClient })
        : await deployKassaContracts({ walletClient, publicClient });
      const result = {
        chain: key, chain_id: c.chainId, factory: c.factory, implementation: c.implementation,
        ...(c.testUsdc ? { tokens: [{ symbol: 'USDC', address: c.testUsdc, decimals: 6 }, { symbol: 'USDT', address: c.testUsdt!, decimals: 6 }] } : {}),
        tx_hashes: c.txHashes,
      };
      printResult(Boolean(values.json), result,
        `Deployed on ${key} (chain id ${c.chainId}). Put these in the chains config under "chains.${key}":\n` +
        `  "factory": "${c.factory}",\n  "implementation": "${c.implementation}"` +
        (c.testUsdc ? `,\n  "tokens": [{"symbol": "USDC", "address": "${c.testUsdc}", "decimals": 6}, {"symbol": "USDT", "address": "${c.testUsdt}", "decimals": 6}]` : '') +
        (c.testUsdc ? `\nTest tokens can be minted by anyone: never use them on a real network.` : ''));
    },
  },

  'evm sweep': {
    options: { invoice: { type: 'string' }, chain: { type: 'string' }, ...keyOptions, force: { type: 'boolean' }, json: { type: 'boolean' } },
    async run(values) {
      const invoiceId = values.invoice;
      if (typeof invoiceId !== 'string' || invoiceId === '') throw new UsageError('--invoice is required');
      const key = privateKey(values);
      const cfg0 = config();
      const logger = createLogger({ level: 'warn', destination: process.stderr });
      await prepareDatabase(cfg0, logger);
      const deps = createDeps(cfg0, { logger });
      try {
        let chainKey = values.chain;
        if (chainKey === undefined) {
          const rows = await deps.sql<{ chain: string }[]>`select chain from deposit_addresses where invoice_id = ${invoiceId}`;
          const evm = rows.map((r) => r.chain).filter((c) => isEvmChain(cfg0.chains[c]));
          if (evm.length !== 1) throw new UsageError(evm.length === 0 ? `invoice ${invoiceId} has no EVM deposit address` : `invoice ${invoiceId} has addresses on ${evm.join(', ')}: pass --chain`);
          chainKey = evm[0];
        }
        const { key: chain, cfg } = evmChain(cfg0.chains, chainKey);
        const { publicClient, walletClient } = wallet(cfg, key);
        const sweeper = createSweeper({ chain, cfg, walletClient, publicClient, sql: deps.sql, logger });
        const res = await sweeper.sweepInvoice(invoiceId, { force: Boolean(values.force) });
        if (!res) {
          printResult(Boolean(values.json), { swept: false }, 'nothing to sweep');
          return;
        }
        const out = {
          swept: res.status === 'confirmed', invoice: res.invoiceId, chain, forwarder: res.forwarder, treasury: res.treasury, tx_hash: res.txHash,
          status: res.status, native_amount: res.nativeAmount.toString(),
          token_amounts: Object.fromEntries(Object.entries(res.tokenAmounts).map(([t, v]) => [t, v.toString()])),
        };
        printResult(Boolean(values.json), out,
          `sweep ${res.status}: ${res.txHash}\nforwarder ${res.forwarder} → treasury ${res.treasury}\nnative: ${out.native_amount} base units` +
          Object.entries(out.token_amounts).map(([t, v]) => `\n${t}: ${v} base units`).join(''));
      } finally {
        await deps.close();
      }
    },
  },
};

/** The table src/cli/main.ts loads. */
export const commands = evmCommands;
