import { describe, expect, it } from 'vitest';
import { getAddress } from 'viem';
import { parseChainsFile, type EvmChainConfig } from '../../src/config.ts';
import { networkName } from '../../src/chains/families.ts';
import { EVM_PRESETS } from '../../src/chains/evm/presets.ts';

describe('EVM chain presets', () => {
  it('every token address is a valid EIP-55 checksummed address (a typo in a mixed-case address fails)', () => {
    for (const [key, p] of Object.entries(EVM_PRESETS)) {
      for (const t of p.tokens) expect(getAddress(t.address), `${key} ${t.symbol}`).toBe(t.address);
      expect(p.explorer_tx_url).toContain('{txid}');
      expect(p.reorg_window).toBeGreaterThan(p.confirmations.low);
    }
  });

  it('a three-line entry gets the preset; any field can be overridden', () => {
    const chains = parseChainsFile({
      chains: {
        base: { preset: 'base', rpc_url: 'https://base.example', factory: '0x' + '1'.repeat(40), implementation: '0x' + '2'.repeat(40) },
        arb: { preset: 'arbitrum', rpc_url: 'http://127.0.0.1:8545', chain_id: 31337, confirmations: { high: 0, medium: 1, low_medium: 2, low: 3 }, tokens: ['USDC', { symbol: 'DAI', address: '0x' + '3'.repeat(40), decimals: 18 }] },
      },
    }).chains;
    const base = chains.base as EvmChainConfig;
    expect(base).toMatchObject({
      type: 'evm', preset: 'base', name: 'Base', chain_id: 8453, native_symbol: 'ETH', use_finalized_tag: true,
      explorer_tx_url: 'https://basescan.org/tx/{txid}', rpc_url: 'https://base.example',
      tokens: [{ symbol: 'USDC', address: '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913', decimals: 6 }],
    });
    const arb = chains.arb as EvmChainConfig;
    expect(arb).toMatchObject({ chain_id: 31337, name: 'Arbitrum One', confirmations: { medium: 1 } });
    expect(arb.tokens.map((t) => t.symbol)).toEqual(['USDC', 'DAI']);
    expect(networkName('arb', arb)).toBe('Arbitrum One');
    expect(networkName('base', base)).toBe('Base');
  });

  it('names networks by their real names, falling back to the chain key and id', () => {
    const chains = parseChainsFile({
      chains: {
        btc: { type: 'bitcoin', network: 'testnet' },
        ethereum: { type: 'evm', network: 'hardhat', chain_id: 31337, rpc_url: 'http://127.0.0.1:8545' },
        poly: { type: 'evm', network: 'mainnet', chain_id: 137, rpc_url: 'http://127.0.0.1:8545' },
        mine: { type: 'evm', network: 'x', name: 'My chain', chain_id: 5, rpc_url: 'http://127.0.0.1:8545' },
      },
    }).chains;
    expect(networkName('btc', chains.btc)).toBe('Bitcoin testnet');
    expect(networkName('ethereum', chains.ethereum)).toBe('Ethereum (chain 31337)');
    expect(networkName('poly', chains.poly)).toBe('Polygon PoS');
    expect(networkName('mine', chains.mine)).toBe('My chain');
  });

  it.each([
    [{ preset: 'basee', rpc_url: 'http://a' }, /chains\.x\.preset: unknown preset "basee"; known presets: ethereum, base, arbitrum/],
    [{ preset: 'base', rpc_url: 'http://a', tokens: ['USDT'] }, /chains\.x\.tokens\.0: preset "base" has no token "USDT"/],
    [{ preset: 'base' }, /chains\.x\.rpc_url/],
    [{ preset: 'base', type: 'bitcoin', network: 'mainnet' }, /presets are EVM chains/],
  ])('a bad preset entry is one readable error: %j', (entry, re) => {
    expect(() => parseChainsFile({ chains: { x: entry } })).toThrowError(re);
  });
});
