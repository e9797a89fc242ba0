/**
 * Deploys Kassa's EVM contracts: the `ForwarderFactory` (which deploys its `Forwarder`
 * implementation in its constructor). The test tokens of local chains are deployed by
 * src/sandbox/test-tokens.ts.
 */
import { getAddress, type Abi, type Account, type Address, type Chain, type Hex, type PublicClient, type Transport, type WalletClient } from 'viem';
import { KassaError } from '../../errors.ts';
import { forwarderFactoryAbi, forwarderFactoryBytecode } from './artifacts.ts';

/** A wallet client with an account attached (a local private-key account or a node-managed one). */
export type AccountWalletClient = WalletClient<Transport, Chain | undefined, Account>;

export interface DeployKassaContractsParams {
  walletClient: AccountWalletClient;
  publicClient: PublicClient;
}

export interface KassaContracts {
  chainId: number;
  /** `ForwarderFactory` address. */
  factory: Address;
  /** The factory's `Forwarder` implementation (`IMPLEMENTATION()`), needed for offline prediction. */
  implementation: Address;
  /** Deployment transaction hashes (factory first). */
  txHashes: Hex[];
}

/** Waits for the receipt of `hash`; a reverted transaction is `evm_deploy_failed`. Returns the created contract's address, if any. */
export async function waitSuccess(publicClient: PublicClient, hash: Hex, what: string): Promise<Address | null> {
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success') {
    throw new KassaError('evm_deploy_failed', `${what} transaction ${hash} reverted.`, { retryable: false });
  }
  return receipt.contractAddress ?? null;
}

/** Deploys one contract and waits for it; its transaction hash is appended to `txHashes`. */
export async function deployOne(
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
 * Deploys the factory, waiting for its receipt.
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
  return { chainId, factory, implementation, txHashes };
}
