import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { forwarderFactoryAbi } from '../../src/chains/evm/artifacts.ts';
import { evmCommands } from '../../src/cli/evm.ts';
import { startHardhatNode, type HardhatNode } from '../support/hardhat.ts';
import { createPublicClient, http } from 'viem';

let node: HardhatNode;
let dir: string;
const saved = { ...process.env };

beforeAll(async () => {
  node = await startHardhatNode();
  dir = mkdtempSync(path.join(tmpdir(), 'kassa-evm-cli-'));
  const cfg = path.join(dir, 'chains.json');
  writeFileSync(cfg, JSON.stringify({ chains: { local: { type: 'evm', network: 'hardhat', chain_id: 31337, rpc_url: node.url } } }));
  writeFileSync(path.join(dir, 'key'), node.accounts[1]!.privateKey + '\n');
  process.env.KASSA_CONFIG = cfg;
  process.env.KASSA_SECRET_KEY = '22'.repeat(32);
}, 60_000);

afterAll(async () => {
  process.env = saved;
  await node?.stop();
});

describe('kassa evm deploy', () => {
  it('deploys the factory (and test tokens) with a key file and prints the addresses as JSON', async () => {
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out.push(String(s)); return true; });
    try {
      await evmCommands['evm deploy']!.run({ chain: 'local', 'key-file': path.join(dir, 'key'), 'test-tokens': true, json: true }, []);
    } finally {
      spy.mockRestore();
    }
    const res = JSON.parse(out.join('')) as { factory: `0x${string}`; implementation: string; tokens: { symbol: string }[] };
    expect(res.tokens.map((t) => t.symbol)).toEqual(['USDC', 'USDT']);
    const pc = createPublicClient({ transport: http(node.url) });
    expect(await pc.readContract({ address: res.factory, abi: forwarderFactoryAbi, functionName: 'IMPLEMENTATION' })).toBe(res.implementation);
    expect(out.join('')).not.toContain(node.accounts[1]!.privateKey.slice(2));
  });

  it('refuses an unknown chain and a malformed key', async () => {
    await expect(evmCommands['evm deploy']!.run({ chain: 'nope', 'private-key': node.accounts[1]!.privateKey }, [])).rejects.toThrow(/not an EVM chain/);
    await expect(evmCommands['evm deploy']!.run({ chain: 'local', 'private-key': '0x1234' }, [])).rejects.toThrow(/64 hex/);
  });
});
