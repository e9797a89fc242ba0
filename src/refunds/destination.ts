/**
 * Checks a refund destination typed by the customer on the claim page (docs/refunds.md, rule 10)
 * and returns its canonical form: bech32/bech32m lowercase or base58 as typed for Bitcoin (the
 * checksum and the network's prefix are checked by bitcoinjs-lib `address.toOutputScript`), the
 * EIP-55 checksummed form for EVM (viem `isAddress` strict: a mixed-case address must carry a
 * valid checksum; all lower- or upper-case has none to check).
 */
import * as bitcoin from 'bitcoinjs-lib';
import { getAddress, isAddress } from 'viem';
import type { ChainConfig } from '../config.ts';
import { invalidParam } from '../errors.ts';
import { bitcoinNetwork } from '../chains/bitcoin/networks.ts';
import { ensureEcc } from '../chains/bitcoin/ecc.ts';

export interface CheckedDestination {
  address: string;
  /** Bitcoin only: the output script the refund pays. */
  script?: Uint8Array;
}

const MAX_ADDRESS_LENGTH = 120;

export function checkDestination(raw: unknown, chain: ChainConfig, param = 'destination'): CheckedDestination {
  if (typeof raw !== 'string' || raw.trim() === '') throw invalidParam(param, 'Enter the address the refund should be sent to.', 'destination_missing');
  const typed = raw.trim();
  if (typed.length > MAX_ADDRESS_LENGTH) throw invalidParam(param, 'This is not an address: it is too long.', 'destination_invalid');
  if (chain.type === 'bitcoin') {
    ensureEcc(); // taproot (bech32m) outputs need the secp256k1 backend
    const network = bitcoinNetwork(chain.network);
    // bech32 may be written in upper case (QR codes); its canonical form is lower case.
    const address = /^[A-Z0-9]+$/.test(typed) && typed.toLowerCase().startsWith(network.bech32) ? typed.toLowerCase() : typed;
    try {
      return { address, script: bitcoin.address.toOutputScript(address, network) };
    } catch {
      throw invalidParam(param, `This is not a valid Bitcoin address for ${chain.network}: check for a typing mistake, and that it is an address of the same network.`, 'destination_invalid');
    }
  }
  if (!/^0x[0-9a-fA-F]{40}$/.test(typed)) {
    throw invalidParam(param, 'An address on this network is 0x followed by 40 hexadecimal characters.', 'destination_invalid');
  }
  if (!isAddress(typed, { strict: true })) {
    throw invalidParam(param, 'The capital letters of this address do not match its checksum (EIP-55): it was probably mistyped. Copy it again from your wallet.', 'destination_checksum_invalid');
  }
  if (/^0x0{40}$/.test(typed)) throw invalidParam(param, 'The zero address cannot receive a refund.', 'destination_invalid');
  return { address: getAddress(typed) };
}
