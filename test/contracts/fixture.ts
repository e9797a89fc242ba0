/**
 * Shared setup for the contract tests: a hardhat node, viem clients for the dev accounts, the
 * Kassa contracts (factory + test tokens) deployed with deployDevContracts, and small helpers.
 */
import { randomBytes } from 'node:crypto';
import {
  BaseError,
  ContractFunctionRevertedError,
  bytesToHex,
  decodeErrorResult,
  type Abi,
  createPublicClient,
  createWalletClient,
  http,
  type Address,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
} from 'viem';
import { generatePrivateKey, privateKeyToAccount, privateKeyToAddress } from 'viem/accounts';
import { hardhat } from 'viem/chains';
import { deployDevContracts, type KassaDevContracts } from '../../src/sandbox/test-tokens.ts';
import { startHardhatNode, type HardhatNode } from '../support/hardhat.ts';

export interface ContractsFixture {
  node: HardhatNode;
  publicClient: PublicClient;
  /** Wallet clients for dev accounts 0..9; [0] deployed the contracts and holds the test tokens. */
  wallets: TestWallet[];
  contracts: KassaDevContracts;
}

const makeWallet = (url: string, privateKey: Hex) =>
  createWalletClient({ chain: hardhat, transport: http(url, { retryCount: 0 }), account: privateKeyToAccount(privateKey), pollingInterval: 25 });
/** A wallet client with the hardhat chain and a local account bound (no `chain`/`account` per call). */
export type TestWallet = ReturnType<typeof makeWallet>;

export async function setupContractsFixture(): Promise<ContractsFixture> {
  const node = await startHardhatNode();
  try {
    const transport = http(node.url, { retryCount: 0 });
    const publicClient = createPublicClient({ chain: hardhat, transport, pollingInterval: 25 });
    const wallets = node.accounts.map((a) => makeWallet(node.url, a.privateKey));
    const deployer = wallets[0];
    if (!deployer) throw new Error('no dev accounts');
    const contracts = await deployDevContracts({ walletClient: deployer, publicClient });
    return { node, publicClient, wallets, contracts };
  } catch (err) {
    await node.stop();
    throw err;
  }
}

/** A fresh random address (balance 0, no code). */
export const randomAddress = (): Address => privateKeyToAddress(generatePrivateKey());
/** 32 random bytes. */
export const randomBytes32 = (): Hex => bytesToHex(randomBytes(32));

export function wallet(f: ContractsFixture, i: number): TestWallet {
  const w = f.wallets[i];
  if (!w) throw new Error(`no wallet ${i}`);
  return w;
}

/** Waits for the receipt and asserts success. */
export async function mined(f: ContractsFixture, hash: Hex | Promise<Hex>): Promise<TransactionReceipt> {
  const receipt = await f.publicClient.waitForTransactionReceipt({ hash: await hash });
  if (receipt.status !== 'success') throw new Error(`transaction ${receipt.transactionHash} reverted`);
  return receipt;
}

/** The custom error name (and args) a contract call reverted with, or throws if it did not revert. */
export async function revertOf(
  call: () => Promise<unknown>,
  /** Extra ABI to decode errors bubbled up from another contract (e.g. the Forwarder's, via the factory). */
  extraAbi?: Abi,
): Promise<{ name: string; args: readonly unknown[] }> {
  try {
    await call();
  } catch (err) {
    if (err instanceof BaseError) {
      const revert = err.walk((e) => e instanceof ContractFunctionRevertedError);
      if (revert instanceof ContractFunctionRevertedError) {
        if (revert.data) return { name: revert.data.errorName, args: revert.data.args ?? [] };
        if (extraAbi && revert.raw) {
          const decoded = decodeErrorResult({ abi: extraAbi, data: revert.raw });
          return { name: decoded.errorName, args: decoded.args ?? [] };
        }
        return { name: revert.reason ?? 'unknown', args: [] };
      }
    }
    throw err;
  }
  throw new Error('expected the call to revert, it succeeded');
}
