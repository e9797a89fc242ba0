/**
 * Bitcoin networks Kassa supports, as bitcoinjs-lib `Network` objects plus the extended-key
 * version bytes (SLIP-132) each one accepts.
 */
import * as bitcoin from 'bitcoinjs-lib';
import { invalidParam } from '../../errors.ts';

export type BitcoinNetworkName = 'mainnet' | 'testnet' | 'signet' | 'regtest';
export type BitcoinAddressType = 'p2wpkh' | 'p2tr' | 'p2sh-p2wpkh';

export const BITCOIN_NETWORK_NAMES: readonly BitcoinNetworkName[] = ['mainnet', 'testnet', 'signet', 'regtest'];
export const BITCOIN_ADDRESS_TYPES: readonly BitcoinAddressType[] = ['p2wpkh', 'p2tr', 'p2sh-p2wpkh'];

/** Signet shares testnet's address prefixes (tb1…, m/n/2…) and extended key versions. */
const signet: bitcoin.Network = { ...bitcoin.networks.testnet };

const NETWORKS: Record<BitcoinNetworkName, bitcoin.Network> = {
  mainnet: bitcoin.networks.bitcoin,
  testnet: bitcoin.networks.testnet,
  signet,
  regtest: bitcoin.networks.regtest, // bech32 hrp 'bcrt'
};

/** The bitcoinjs-lib network for a Kassa network name. */
export function bitcoinNetwork(name: BitcoinNetworkName): bitcoin.Network {
  const n = NETWORKS[name];
  if (!n) throw invalidParam('network', `Unknown Bitcoin network '${String(name)}'. Use one of: ${BITCOIN_NETWORK_NAMES.join(', ')}.`);
  return n;
}

export function isBitcoinNetworkName(v: unknown): v is BitcoinNetworkName {
  return typeof v === 'string' && (BITCOIN_NETWORK_NAMES as readonly string[]).includes(v);
}

/** Mainnet vs the test networks (testnet, signet, regtest share key and WIF versions). */
export function isTestNetwork(name: BitcoinNetworkName): boolean {
  return name !== 'mainnet';
}

export type KeyKind = 'public' | 'private';
export type KeyFamily = 'mainnet' | 'test';

export interface ExtendedKeyVersion {
  prefix: string;
  kind: KeyKind;
  family: KeyFamily;
  /** The script type the SLIP-132 prefix implies; null for xpub/tpub (no implication). */
  implies: BitcoinAddressType | null;
  /** Multisig prefixes (Ypub/Zpub/Upub/Vpub): recognised only to give a clear error. */
  multisig?: boolean;
}

/** SLIP-132 version bytes (big-endian uint32) of the extended keys we recognise. */
export const EXTENDED_KEY_VERSIONS: ReadonlyMap<number, ExtendedKeyVersion> = new Map<number, ExtendedKeyVersion>([
  [0x0488b21e, { prefix: 'xpub', kind: 'public', family: 'mainnet', implies: null }],
  [0x0488ade4, { prefix: 'xprv', kind: 'private', family: 'mainnet', implies: null }],
  [0x049d7cb2, { prefix: 'ypub', kind: 'public', family: 'mainnet', implies: 'p2sh-p2wpkh' }],
  [0x049d7878, { prefix: 'yprv', kind: 'private', family: 'mainnet', implies: 'p2sh-p2wpkh' }],
  [0x04b24746, { prefix: 'zpub', kind: 'public', family: 'mainnet', implies: 'p2wpkh' }],
  [0x04b2430c, { prefix: 'zprv', kind: 'private', family: 'mainnet', implies: 'p2wpkh' }],
  [0x0295b43f, { prefix: 'Ypub', kind: 'public', family: 'mainnet', implies: null, multisig: true }],
  [0x0295b005, { prefix: 'Yprv', kind: 'private', family: 'mainnet', implies: null, multisig: true }],
  [0x02aa7ed3, { prefix: 'Zpub', kind: 'public', family: 'mainnet', implies: null, multisig: true }],
  [0x02aa7a99, { prefix: 'Zprv', kind: 'private', family: 'mainnet', implies: null, multisig: true }],
  [0x043587cf, { prefix: 'tpub', kind: 'public', family: 'test', implies: null }],
  [0x04358394, { prefix: 'tprv', kind: 'private', family: 'test', implies: null }],
  [0x044a5262, { prefix: 'upub', kind: 'public', family: 'test', implies: 'p2sh-p2wpkh' }],
  [0x044a4e28, { prefix: 'uprv', kind: 'private', family: 'test', implies: 'p2sh-p2wpkh' }],
  [0x045f1cf6, { prefix: 'vpub', kind: 'public', family: 'test', implies: 'p2wpkh' }],
  [0x045f18bc, { prefix: 'vprv', kind: 'private', family: 'test', implies: 'p2wpkh' }],
  [0x024289ef, { prefix: 'Upub', kind: 'public', family: 'test', implies: null, multisig: true }],
  [0x024285b5, { prefix: 'Uprv', kind: 'private', family: 'test', implies: null, multisig: true }],
  [0x02575483, { prefix: 'Vpub', kind: 'public', family: 'test', implies: null, multisig: true }],
  [0x02575048, { prefix: 'Vprv', kind: 'private', family: 'test', implies: null, multisig: true }],
]);

/** Standard (BIP-32) public version for a family: xpub on mainnet, tpub on the test networks. */
export function standardPublicVersion(family: KeyFamily): number {
  return family === 'mainnet' ? 0x0488b21e : 0x043587cf;
}

export function keyFamily(network: BitcoinNetworkName): KeyFamily {
  return network === 'mainnet' ? 'mainnet' : 'test';
}
