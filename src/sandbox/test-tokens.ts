/**
 * The test tokens of local chains: TestUSDC and TestUSDT (6 decimals, public `mint`; TestUSDT
 * returns no value from `transfer` like mainnet USDT). Anybody can mint them, so they exist only on
 * local chains: the sandbox's hardhat node, `kassa evm deploy --test-tokens`, and the tests.
 */
import type { Address, Hex } from 'viem';
import { deployKassaContracts, deployOne, waitSuccess, type DeployKassaContractsParams, type KassaContracts } from '../chains/evm/deploy.ts';
import { testUSDCAbi, testUSDCBytecode, testUSDTAbi, testUSDTBytecode } from './contract-artifacts.ts';

/** 1,000,000 tokens with 6 decimals. */
export const DEFAULT_TEST_TOKEN_MINT = 1_000_000_000_000n;

export interface TestTokens {
  testUsdc: Address;
  testUsdt: Address;
  /** Deployment and mint transaction hashes, in order. */
  txHashes: Hex[];
}

/** Kassa's contracts and the test tokens on one local chain. */
export type KassaDevContracts = KassaContracts & { testUsdc: Address; testUsdt: Address };

/**
 * Deploys TestUSDC and TestUSDT and mints `mint` base units of each (default 1,000,000 tokens) to
 * the deployer, one transaction at a time, waiting for each receipt.
 */
export async function deployTestTokens(p: DeployKassaContractsParams & { mint?: bigint }): Promise<TestTokens> {
  const mint = p.mint ?? DEFAULT_TEST_TOKEN_MINT;
  const to = p.walletClient.account.address;
  const txHashes: Hex[] = [];
  const testUsdc = await deployOne(p, 'TestUSDC', testUSDCAbi, testUSDCBytecode, txHashes);
  const testUsdt = await deployOne(p, 'TestUSDT', testUSDTAbi, testUSDTBytecode, txHashes);
  if (mint > 0n) {
    for (const [name, address, abi] of [
      ['TestUSDC', testUsdc, testUSDCAbi],
      ['TestUSDT', testUsdt, testUSDTAbi],
    ] as const) {
      const hash = await p.walletClient.writeContract({
        address,
        abi,
        functionName: 'mint',
        args: [to, mint],
        account: p.walletClient.account,
        chain: p.walletClient.chain ?? null,
      });
      txHashes.push(hash);
      await waitSuccess(p.publicClient, hash, `${name} mint`);
    }
  }
  return { testUsdc, testUsdt, txHashes };
}

/** The factory (deployKassaContracts), then the test tokens: what a local chain needs. */
export async function deployDevContracts(p: DeployKassaContractsParams & { mint?: bigint }): Promise<KassaDevContracts> {
  const kassa = await deployKassaContracts(p);
  const tokens = await deployTestTokens(p);
  return { ...kassa, testUsdc: tokens.testUsdc, testUsdt: tokens.testUsdt, txHashes: [...kassa.txHashes, ...tokens.txHashes] };
}
