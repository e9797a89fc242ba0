import { describe, expect, it } from 'vitest';
import { createForwarderAddresses } from '../../src/chains/evm/forwarder-address.ts';
import { invoiceSaltFor, predictForwarderAddress } from '../../src/chains/evm/forwarder.ts';
import { getAddress, type Address } from 'viem';
import { newId } from '../../src/ids.ts';
import { randomBytes } from 'node:crypto';

const randomAddress = () => `0x${randomBytes(20).toString('hex')}`;

describe('forwarder address on the invoice path', () => {
  it('equals predictForwarderAddress for random deployments, treasuries (any case) and invoice ids', () => {
    const f = createForwarderAddresses();
    const deployments = [
      { factory: '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0', implementation: '0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9' },
      { factory: randomAddress(), implementation: randomAddress() },
    ];
    for (let i = 0; i < 200; i++) {
      const d = deployments[i % 2]!;
      const raw = randomAddress();
      const treasury = i % 3 === 0 ? raw : i % 3 === 1 ? getAddress(raw) : raw.toUpperCase().replace('0X', '0x');
      const invoiceId = i % 5 === 0 ? `inv_${'é'.repeat(i % 7)}${i}` : newId('inv');
      const got = f.forInvoice({ ...d, treasury, invoiceId });
      const want = predictForwarderAddress({
        factory: d.factory as Address, implementation: d.implementation as Address, treasury: treasury as Address, invoiceSalt: invoiceSaltFor(invoiceId),
      });
      expect(got.address).toBe(want);
      expect(got.derivation).toEqual({ treasury: getAddress(raw), factory: getAddress(d.factory), implementation: getAddress(d.implementation) });
    }
  });
});
