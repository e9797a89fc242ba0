/**
 * `kassa sandbox test-key`: a fresh random BIP84 (native SegWit) account key for a TEST network
 * (regtest, testnet, signet: `tpub…`), to try the integration guide's Bitcoin payment method
 * without a wallet. Never for mainnet: the network list has no mainnet, and the seed is random and
 * not kept (the caller may print the account `tprv` to spend test coins).
 */
import { randomBytes } from 'node:crypto';
import { BIP32Factory } from 'bip32';
import * as ecc from '@bitcoinerlab/secp256k1';
import { parseBitcoinKeySource } from '../chains/bitcoin/descriptor.ts';
import { deriveAddresses } from '../chains/bitcoin/derive.ts';
import { bitcoinNetwork } from '../chains/bitcoin/networks.ts';

export const TEST_KEY_NETWORKS = ['regtest', 'testnet', 'signet'] as const;
export type TestKeyNetwork = (typeof TEST_KEY_NETWORKS)[number];

export interface TestKey {
  network: TestKeyNetwork;
  address_type: 'p2wpkh';
  path: string;
  xpub: string;
  /** Canonical receive descriptor with key origin and checksum, as Kassa stores it. */
  descriptor: string;
  first_addresses: { index: number; address: string }[];
  tprv: string;
}

export function testKey(network: TestKeyNetwork, seed: Uint8Array = randomBytes(32)): TestKey {
  if (!(TEST_KEY_NETWORKS as readonly string[]).includes(network)) throw new Error(`test keys are for ${TEST_KEY_NETWORKS.join(', ')} only`);
  const net = bitcoinNetwork(network);
  const root = BIP32Factory(ecc).fromSeed(Buffer.from(seed), net);
  const path = "m/84'/1'/0'";
  const account = root.derivePath(path);
  const xpub = account.neutered().toBase58();
  const fingerprint = Buffer.from(root.fingerprint).toString('hex');
  const source = parseBitcoinKeySource({ descriptor: `wpkh([${fingerprint}/84h/1h/0h]${xpub}/0/*)` }, network);
  return {
    network,
    address_type: 'p2wpkh',
    path,
    xpub,
    descriptor: source.descriptor,
    first_addresses: deriveAddresses(source, 0, 3).map((a) => ({ index: a.index, address: a.address })),
    tprv: account.toBase58(),
  };
}
