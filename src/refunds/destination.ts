/**
 * Checks a destination typed by a person — the customer on the refund claim page, finance staff
 * for a payout (docs/refunds.md, rule 10) — and returns its canonical form. What an address is on
 * the chain and network is the chain family's rule (`parseAddress`, src/chains/<family>/family.ts):
 * Bitcoin checksums and the network's prefix, EIP-55 on EVM chains.
 */
import type { ChainConfig } from '../config.ts';
import { invalidParam } from '../errors.ts';
import { chainFamily } from '../chains/families.ts';
import type { CheckedAddress } from '../chains/family.ts';

export type CheckedDestination = CheckedAddress;

const MAX_ADDRESS_LENGTH = 120;

export function checkDestination(raw: unknown, chain: ChainConfig, param = 'destination'): CheckedDestination {
  if (typeof raw !== 'string' || raw.trim() === '') throw invalidParam(param, 'Enter the address the money should be sent to.', 'destination_missing');
  const typed = raw.trim();
  if (typed.length > MAX_ADDRESS_LENGTH) throw invalidParam(param, 'This is not an address: it is too long.', 'destination_invalid');
  return chainFamily(chain).parseAddress(typed, param);
}
