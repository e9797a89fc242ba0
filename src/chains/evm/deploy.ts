/**
 * Deploys Kassa's EVM contracts: the `ForwarderFactory` (which deploys its `Forwarder`
 * implementation in its constructor) and, for local chains / the sandbox, the test tokens.
 */
import { getAddress, type Abi, type Account, type Address, type Chain, type Hex, type PublicClient, type Transport, type WalletClient } from 'viem';
import { KassaError } from '../../errors.ts';
import {
  forwarderFactoryAbi,
  forwarderFactoryBytecode,
  testUSDCAbi,
  testUSDCBytecode,
  testUSDTAbi,
  testUSDTBytecode,
} from './artifacts.ts';

/** A wallet client with an account attached (a local private-key account or a node-managed one). */
export type AccountWalletClient = WalletClient<Transport, Chain | undefined, Account>;

export interface DeployKassaContractsParams {
  walletClient: AccountWalletClient;
  publicClient: PublicClient;
  /**
   * Also deploy TestUSDC and TestUSDT (6 decimals, public `mint`) and mint `testTokenMint` of
   * each to the deployer. For local chains and the sandbox only: anybody can mint them.
   */
  withTestTokens?: boolean;
  /** Base units minted to the deployer per test token. Default 1,000,000 tokens (1e12 units). */
  testTokenMint?: bigint;
}

export interface KassaContracts {
  chainId: number;
  /** `ForwarderFactory` address. */
  factory: Address;
  /** The factory's `Forwarder` implementation (`IMPLEMENTATION()`), needed for offline prediction. */
  implementation: Address;
  /** TestUSDC / TestUSDT addresses, when `withTestTokens`. */
  testUsdc?: Address;
  testUsdt?: Address;
  /** Deployment transaction hashes (factory first). */
  txHashes: Hex[];
}

/** 1,000,000 tokens with 6 decimals. */
export const DEFAULT_TEST_TOKEN_MINT = 1_000_000_000_000n;

async function waitSuccess(publicClient: PublicClient, hash: Hex, what: string): Promise<Address | null> {
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success') {
    throw new KassaError('evm_deploy_failed', `${what} transaction ${hash} reverted.`, { retryable: false });
  }
  return receipt.contractAddress ?? null;
}

async function deployOne(
  p: DeployKassaContractsParams,
  name: string,
  abi: Abi,
  bytecode: Hex,
  txHashes: Hex[],
): Promise<Address> {
  const hash = await p.walletClient.deployContract({
    abi,
    bytecode,
    account: p.walletClient.account,
    chain: p.walletClient.chain ?? null,
  });
  txHashes.push(hash);
  const address = await waitSuccess(p.publicClient, hash, `${name} deployment`);
  if (!address) {
    throw new KassaError('evm_deploy_failed', `${name} deployment ${hash} has no contract address.`, {
      retryable: false,
    });
  }
  return getAddress(address);
}

/**
 * Deploys the factory (and optionally the test tokens, minting some to the deployer) one
 * transaction at a time, waiting for each receipt.
 * RPC: eth_chainId, eth_sendTransaction / eth_sendRawTransaction (via the wallet client),
 * eth_getTransactionReceipt (polling), eth_call (`IMPLEMENTATION()`).
 */
export async function deployKassaContracts(p: DeployKassaContractsParams): Promise<KassaContracts> {
  const chainId = await p.publicClient.getChainId();
  const txHashes: Hex[] = [];
  const factory = await deployOne(p, 'ForwarderFactory', forwarderFactoryAbi, forwarderFactoryBytecode, txHashes);
  const implementation = await p.publicClient.readContract({
    address: factory,
    abi: forwarderFactoryAbi,
    functionName: 'IMPLEMENTATION',
  });
  const result: KassaContracts = { chainId, factory, implementation, txHashes };
  if (p.withTestTokens) {
    const mint = p.testTokenMint ?? DEFAULT_TEST_TOKEN_MINT;
    const to = p.walletClient.account.address;
    result.testUsdc = await deployOne(p, 'TestUSDC', testUSDCAbi, testUSDCBytecode, txHashes);
    result.testUsdt = await deployOne(p, 'TestUSDT', testUSDTAbi, testUSDTBytecode, txHashes);
    if (mint > 0n) {
      for (const [name, address, abi] of [
        ['TestUSDC', result.testUsdc, testUSDCAbi],
        ['TestUSDT', result.testUsdt, testUSDTAbi],
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
  }
  return result;
}
