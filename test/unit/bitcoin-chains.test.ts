/**
 * Issue 14 defect 7: with two chains of type "bitcoin" in the chains file, the method "BTC"
 * resolved to the last one (the asset registry) while the watcher and the payment method used the
 * first one. Kassa refuses such a file at start, naming both chains.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, loadConfig, parseChainsFile, type ChainConfig } from '../../src/config.ts';
import { createAssetRegistry } from '../../src/money/assets.ts';

const TWO = {
  chains: {
    bitcoin: { type: 'bitcoin', network: 'regtest', rpc: { url: 'http://127.0.0.1:1' } },
    btctest: { type: 'bitcoin', network: 'testnet', rpc: { url: 'http://127.0.0.1:2' } },
  },
};

function file(content: unknown): string {
  const f = path.join(mkdtempSync(path.join(tmpdir(), 'kassa-two-btc-')), 'chains.json');
  writeFileSync(f, JSON.stringify(content));
  return f;
}

describe('two Bitcoin chains in the chains file', () => {
  it('are refused when the configuration is loaded, with a message naming both chains', () => {
    const f = file(TWO);
    const load = () => loadConfig({ KASSA_ENV: 'test', KASSA_SECRET_KEY: '11'.repeat(32), KASSA_CONFIG: f });
    expect(load).toThrowError(ConfigError);
    expect(load).toThrowError(/is invalid at chains\.btctest: only one chain of type "bitcoin" is supported per deployment, but "bitcoin" and "btctest" both are/);
  });

  it('one Bitcoin chain next to EVM chains is fine', () => {
    const one = parseChainsFile({
      chains: { bitcoin: TWO.chains.bitcoin, ethereum: { type: 'evm', network: 'local', chain_id: 31337, rpc_url: 'http://127.0.0.1:1' } },
    });
    expect(Object.keys(one.chains)).toEqual(['bitcoin', 'ethereum']);
    expect(createAssetRegistry(one.chains).method('BTC')?.chain).toBe('bitcoin');
  });

  it('the asset registry refuses them too (configs built in code)', () => {
    const chains = {
      bitcoin: { type: 'bitcoin', network: 'regtest', rpc: { url: 'http://127.0.0.1:1' }, poll_interval_ms: 1000, reorg_window: 100 },
      btctest: { type: 'bitcoin', network: 'testnet', rpc: { url: 'http://127.0.0.1:2' }, poll_interval_ms: 1000, reorg_window: 100 },
    } as unknown as Record<string, ChainConfig>;
    expect(() => createAssetRegistry(chains)).toThrowError(/only one chain of type "bitcoin".*"bitcoin" and "btctest"/);
  });

  it('`kassa worker` exits at start with the message, before touching anything', async () => {
    const run = promisify(execFile);
    const env = { ...(process.env as Record<string, string>), KASSA_CONFIG: file(TWO), KASSA_ENV: 'test', KASSA_SECRET_KEY: '11'.repeat(32), DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none', LOG_LEVEL: 'warn' };
    const r = await run('node', [path.resolve('bin/kassa.js'), 'worker'], { env, timeout: 240_000 }).then(
      (x) => ({ code: 0, stderr: x.stderr }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/only one chain of type "bitcoin" is supported per deployment, but "bitcoin" and "btctest" both are/);
  }, 300_000);
});
